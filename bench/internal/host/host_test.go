package host

import (
	"math"
	"os"
	"runtime"
	"testing"
)

func TestReadingsOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readings come from Linux's /proc")
	}
	pid := os.Getpid()
	for name, v := range map[string]float64{"CPUSeconds": CPUSeconds(pid), "RSS": RSS(pid), "PeakRSS": PeakRSS(pid), "OpenFDs": OpenFDs(pid)} {
		if math.IsNaN(v) || v < 0 {
			t.Errorf("%s(self) = %v", name, v)
		}
	}
	rss := RSS(pid)
	if peak := PeakRSS(pid); rss < 1<<20 || peak < rss {
		t.Errorf("RSS %v, then peak %v", rss, peak)
	}
	if !Alive(pid) || NumCPU() < 1 || CPUModel() == "" {
		t.Errorf("Alive %v, NumCPU %d, CPUModel %q", Alive(pid), NumCPU(), CPUModel())
	}
	// PID 0 stands for a process not found: no reading, not zero.
	for name, v := range map[string]float64{"CPUSeconds": CPUSeconds(0), "RSS": RSS(0), "OpenFDs": OpenFDs(0)} {
		if !math.IsNaN(v) {
			t.Errorf("%s(0) = %v, want NaN", name, v)
		}
	}
}
