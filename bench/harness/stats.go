//go:build linux

package main

import (
	"math"
	"slices"
)

// slope returns the least-squares slope of ys against xs (units of y per
// unit of x), ignoring pairs where y is NaN. It returns NaN with fewer than
// two usable points or when every x is the same.
func slope(xs, ys []float64) float64 {
	var n, sx, sy float64
	for i, x := range xs {
		if math.IsNaN(ys[i]) {
			continue
		}
		n++
		sx += x
		sy += ys[i]
	}
	if n < 2 {
		return math.NaN()
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i, x := range xs {
		if math.IsNaN(ys[i]) {
			continue
		}
		num += (x - mx) * (ys[i] - my)
		den += (x - mx) * (x - mx)
	}
	if den == 0 {
		return math.NaN()
	}
	return num / den
}

// median returns the median of the values that are not NaN, or NaN when
// there are none.
func median(vs []float64) float64 {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// minOf and maxOf return the smallest and largest values that are not NaN,
// or NaN when there are none.
func minOf(vs []float64) float64 {
	m := math.NaN()
	for _, v := range vs {
		if !math.IsNaN(v) && (math.IsNaN(m) || v < m) {
			m = v
		}
	}
	return m
}

func maxOf(vs []float64) float64 {
	m := math.NaN()
	for _, v := range vs {
		if !math.IsNaN(v) && (math.IsNaN(m) || v > m) {
			m = v
		}
	}
	return m
}

func mean(vs []float64) float64 {
	var n, s float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			n++
			s += v
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / n
}

// Latency histogram: logarithmic buckets 3 % wide from 100 µs to about an
// hour, so quantiles are exact to within 3 % at any scale, in fixed memory.
const (
	histMin    = 1e-4 // seconds; everything below lands in bucket 0
	histGrowth = 1.03
	histBins   = 600
)

var histLogGrowth = math.Log(histGrowth)

type hist struct {
	n    int64
	bins [histBins]int64
}

func (h *hist) add(seconds float64) {
	i := 0
	if seconds > histMin {
		i = min(int(math.Log(seconds/histMin)/histLogGrowth)+1, histBins-1)
	}
	h.bins[i]++
	h.n++
}

func (h *hist) merge(o *hist) {
	h.n += o.n
	for i, c := range o.bins {
		h.bins[i] += c
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q <= 1), or NaN for an empty histogram.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var cum int64
	for i, c := range h.bins {
		cum += c
		if cum >= rank {
			return histMin * math.Pow(histGrowth, float64(i))
		}
	}
	return histMin * math.Pow(histGrowth, histBins-1)
}
