package docker

import (
	"bufio"
	"os"
	"regexp"
)

var containerIDInPath = regexp.MustCompile(`(?:/docker/containers/|/docker/|docker-)([0-9a-f]{64})`)

// SelfID returns the id of the container wharf runs in, or "" when it does
// not run in one. Docker bind-mounts /etc/hostname and friends from
// <root>/containers/<id>/, which shows in mountinfo; cgroup v1 paths carry
// the id too.
func SelfID() string {
	for _, path := range []string{"/proc/self/mountinfo", "/proc/self/cgroup"} {
		if id := findID(path); id != "" {
			return id
		}
	}
	return ""
}

func findID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := containerIDInPath.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}
