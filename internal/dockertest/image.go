package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-logs/wharf/internal/locktest"
)

// LoggenRepo is the repository of the loggen test image; its tags are
// short hashes of the binary.
const LoggenRepo = "wharf-loggen"

// buildTimeout bounds building loggen and importing the image; a cold Go
// build cache on a loaded machine takes well under a minute.
const buildTimeout = 5 * time.Minute

var loggen struct {
	mu  sync.Mutex
	ref string
}

// LoggenImage returns a reference to an image that runs cmd/loggen as its
// entrypoint, building it if needed. The image is FROM scratch: just the
// static binary at /loggen, labelled wharf.test=1, tagged
// wharf-loggen:<first 12 hex digits of the binary's sha256>. The tag makes
// the image a cache shared by test packages and runs: it is rebuilt only
// when loggen's code changes, and left in place afterwards. A file lock in
// the module's .cache directory keeps parallel test packages from importing
// it twice. Safe for concurrent use.
func LoggenImage(t testing.TB) string {
	t.Helper()
	Require(t)
	loggen.mu.Lock()
	defer loggen.mu.Unlock()
	if loggen.ref != "" {
		return loggen.ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	ref, built, err := BuildLoggen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if built {
		t.Logf("dockertest: built image %s in %v", ref, time.Since(start).Round(time.Millisecond))
	}
	loggen.ref = ref
	return ref
}

// BuildLoggen is LoggenImage for programs that are not tests, such as the
// benchmark commands, which measure with the tests' image: it compiles
// loggen, and imports it as an image unless one with the same binary
// exists. built reports whether it imported. It works from any directory
// of the module.
func BuildLoggen(ctx context.Context) (ref string, built bool, err error) {
	root, err := locktest.ModuleRoot()
	if err != nil {
		return "", false, err
	}
	cache := filepath.Join(root, ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", false, fmt.Errorf("dockertest: %w", err)
	}
	unlock, err := locktest.File(filepath.Join(cache, "loggen-image.lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()

	bin, err := buildBinary(ctx, root, cache)
	if err != nil {
		return "", false, err
	}
	sum := sha256.Sum256(bin)
	ref = LoggenRepo + ":" + hex.EncodeToString(sum[:])[:12]
	if err := execDocker(ctx, nil, nil, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		return ref, false, nil
	}

	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	hdr := &tar.Header{
		Name:     "loggen",
		Mode:     0o755,
		Size:     int64(len(bin)),
		Typeflag: tar.TypeReg,
		ModTime:  time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return "", false, fmt.Errorf("dockertest: archive loggen: %w", err)
	}
	if _, err := tw.Write(bin); err != nil {
		return "", false, fmt.Errorf("dockertest: archive loggen: %w", err)
	}
	if err := tw.Close(); err != nil {
		return "", false, fmt.Errorf("dockertest: archive loggen: %w", err)
	}
	err = execDocker(ctx, &archive, nil, "import",
		"--change", `ENTRYPOINT ["/loggen"]`,
		"--change", "LABEL "+LabelTest+"=1",
		"--message", "wharf test log generator",
		"-", ref)
	if err != nil {
		return "", false, err
	}
	return ref, true, nil
}

// buildBinary compiles a static loggen for the daemon's platform and
// returns its bytes. -trimpath and -buildvcs=false make the binary depend
// on the source alone, so the hash tag stays stable across checkouts and
// uncommitted changes elsewhere in the tree.
func buildBinary(ctx context.Context, root, cache string) ([]byte, error) {
	dir, err := os.MkdirTemp(cache, "loggen-build-")
	if err != nil {
		return nil, fmt.Errorf("dockertest: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "loggen")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", out, "./cmd/loggen")
	cmd.Dir = root
	arch, _ := probe()
	if arch == "" {
		arch = runtime.GOARCH
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dockertest: go build ./cmd/loggen in %s: %w: %s", root, err, strings.TrimSpace(string(msg)))
	}
	return os.ReadFile(out)
}
