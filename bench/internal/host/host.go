// Package host is what the benchmark commands (bench/harness,
// bench/readbench) need of the machine they run on: readings of the machine
// and of a process from Linux's /proc, the PID of the Docker daemon, a free
// loopback address and binaries built from this module.
//
// A reading that cannot be taken (the process is gone, the file is not
// readable, there is no /proc) is NaN, so that a table or CSV shows it as
// missing rather than as zero.
package host

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// CPUModel is the model name of the first CPU in /proc/cpuinfo.
func CPUModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

// NumCPU counts the processors in /proc/cpuinfo: the machine's, not the
// ones this process may use (runtime.NumCPU).
func NumCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

// LoadAvg is the 1, 5 and 15 minute load averages, or "n/a".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

// CPUSeconds is a process's user+system CPU time from /proc/PID/stat.
func CPUSeconds(pid int) float64 {
	data, ok := procFile(pid, "stat")
	if !ok {
		return math.NaN()
	}
	// Fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 > len(data) {
		return math.NaN()
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return math.NaN()
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// RSS is a process's resident memory in bytes (VmRSS).
func RSS(pid int) float64 { return statusBytes(pid, "VmRSS") }

// PeakRSS is the most resident memory a process has had, in bytes (VmHWM).
func PeakRSS(pid int) float64 { return statusBytes(pid, "VmHWM") }

// statusBytes reads a size in kB from /proc/PID/status, in bytes.
func statusBytes(pid int, key string) float64 {
	data, ok := procFile(pid, "status")
	if !ok {
		return math.NaN()
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return math.NaN()
}

// procFile reads /proc/PID/name; ok is false when there is no such process
// (pid 0 stands for one not found) or the file cannot be read.
func procFile(pid int, name string) (data []byte, ok bool) {
	if pid <= 0 {
		return nil, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	return data, err == nil
}

// OpenFDs counts the open descriptors of a process.
func OpenFDs(pid int) float64 {
	if pid <= 0 {
		return math.NaN()
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return math.NaN()
	}
	return float64(len(names))
}

// Alive reports whether a process exists.
func Alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// FreeAddr returns a loopback address with a port nothing listens on now,
// for a server started later (wharf's admin address).
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Build compiles a static binary of pkg to out, running the go command in
// dir (the working directory when "").
func Build(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, bytes.TrimSpace(b))
	}
	return nil
}
