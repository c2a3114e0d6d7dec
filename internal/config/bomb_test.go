package config

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestExpansionIsBoundedByBytes: a value repeated through aliases, or
// grown by ${VAR} expansion, is refused once the document's values come to
// more than maxValueBytes, fast and without building what they expand to.
// A few thousand uses of a large value stay far below the node budget yet
// would print gigabytes in `wharf check`.
func TestExpansionIsBoundedByBytes(t *testing.T) {
	big := "/" + strings.Repeat("a", 200_000)
	kib := strings.Repeat("b", 1024)
	env := func(k string) (string, bool) {
		switch k {
		case "BIG":
			return big, true
		case "KIB":
			return kib, true
		}
		return "", false
	}
	aliases := func(n int) string { return "[" + strings.Repeat("*v, ", n-1) + "*v]" }
	for _, tc := range []struct {
		name, yaml, path string
	}{
		{"a written value through aliases", "labels:\n  static:\n    a: &v \"" + big + "\"\nfiles:\n  - paths: [/x]\n    exclude: " + aliases(1000) + "\n", "files[0].exclude["},
		{"an expanded value through aliases", "labels:\n  static:\n    a: &v \"${BIG}\"\nfiles:\n  - paths: [/x]\n    exclude: " + aliases(1000) + "\n", "files[0].exclude["},
		{"a default through aliases", "labels:\n  static:\n    a: &v \"${UNSET:-" + big + "}\"\nfiles:\n  - paths: " + aliases(1000) + "\n", "files[0].paths["},
		{"one value of many references", "data_dir: \"" + strings.Repeat("${KIB}", 20_000) + "\"\n", "data_dir"},
		{"a mapping through aliases", "files:\n  - &f {paths: [\"" + big + "\"], labels: {job: x}}\n" + strings.Repeat("  - *f\n", 1000), "files["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			errs := configErrors(t, loadBytes(tc.yaml, env))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want one saying the values are too large: %v", len(errs), errs)
			}
			e := errs[0]
			if !strings.HasPrefix(e.Path, tc.path) || !strings.Contains(e.Msg, "more than 1MiB") || !strings.Contains(e.Msg, "without repeated *aliases") {
				t.Errorf("error %q, want one at %s... saying the values come to more than 1MiB", e, tc.path)
			}
			if took > 2*time.Second {
				t.Errorf("took %v", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB to refuse it", alloc>>20)
			}
		})
	}
}
