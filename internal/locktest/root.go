package locktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ModuleRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod, whose .cache directory holds
// what the kits share and the files they lock.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locktest: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("locktest: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("locktest: no go.mod above %s", wd)
		}
		dir = parent
	}
}
