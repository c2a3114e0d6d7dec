package entry

import (
	"slices"
	"sync"
	"testing"
)

func TestOrderedAdvancesOverTheResolvedPrefixOnly(t *testing.T) {
	var got []int
	o := NewOrdered(func(v int) { got = append(got, v) })
	a1, a2, a3 := o.Mark(1), o.Mark(2), o.Mark(3)
	a1.Add(1)
	a2.Add(1)
	for _, a := range []*Ack{a1, a2, a3} {
		a.Done(1) // the marker's own hold
	}
	if len(got) != 0 {
		t.Fatalf("advanced to %v past an unresolved group", got)
	}
	a2.Done(1)
	if len(got) != 0 {
		t.Fatalf("advanced to %v with the first group unresolved", got)
	}
	a1.Done(1)
	if !slices.Equal(got, []int{3}) {
		t.Fatalf("advanced to %v, want once to 3", got)
	}
	if n := o.Pending(); n != 0 {
		t.Fatalf("%d pending after everything resolved", n)
	}
	o.Mark(4).Done(1)
	if !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("a group without entries: advanced to %v, want 3 then 4", got)
	}
}

// TestOrderedAdvancesInOrderUnderConcurrentResolves resolves groups from
// many goroutines at once: every value passed to advance is larger than the
// one before, and the last is the last group.
func TestOrderedAdvancesInOrderUnderConcurrentResolves(t *testing.T) {
	const groups = 2000
	var got []int
	o := NewOrdered(func(v int) { got = append(got, v) })
	acks := make([]*Ack, groups)
	for i := range acks {
		acks[i] = o.Mark(i)
		acks[i].Add(1)
		acks[i].Done(1)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := len(acks) - 1 - w; i >= 0; i -= 8 {
				acks[i].Done(1)
			}
		})
	}
	wg.Wait()
	if len(got) == 0 || got[len(got)-1] != groups-1 {
		t.Fatalf("last advance %v, want %d", got[max(0, len(got)-1):], groups-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("advance to %d after %d", got[i], got[i-1])
		}
	}
}
