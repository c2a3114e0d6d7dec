package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DockerdPID finds the dockerd serving the docker CLI: the dockerd holding
// the listening socket of DOCKER_HOST (/var/run/docker.sock by default), as
// another daemon may run beside it. It returns 0 when there is none, or
// when DOCKER_HOST is not a local socket and several dockerd run.
func DockerdPID() int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "dockerd" {
			pids = append(pids, pid)
		}
	}
	if len(pids) <= 1 {
		if len(pids) == 1 {
			return pids[0]
		}
		return 0
	}
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return 0
		}
		sock = path
	}
	inodes := socketInodes(sock)
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && inodes[link] {
				return pid
			}
		}
	}
	return 0
}

// socketInodes returns the "socket:[inode]" names of the unix sockets bound
// to path (the listener and its accepted connections share the path).
func socketInodes(path string) map[string]bool {
	out := map[string]bool{}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return out
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		resolved = path
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		// Num RefCount Protocol Flags Type St Inode Path
		if len(f) >= 8 && (f[7] == path || f[7] == resolved) {
			out["socket:["+f[6]+"]"] = true
		}
	}
	return out
}
