package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLayoutNamesEveryPackage: README's Layout section names every
// package of the module, and no package that is gone, so a newcomer can
// check it against the tree.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	if next := strings.Index(layout, "\n## "); next >= 0 {
		layout = layout[:next]
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:cmd|internal|bench|e2e)[a-z/]*)`").FindAllStringSubmatch(layout, -1) {
		named[m[1]] = true
	}
	out, err := exec.Command("go", "list", "../../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(pkg, "github.com/wharf-logs/wharf/")
		if !named[rel] {
			t.Errorf("package %s is not in README's Layout section", rel)
		}
		delete(named, rel)
	}
	for rel := range named {
		t.Errorf("README's Layout section names %s, which is not a package", rel)
	}
}
