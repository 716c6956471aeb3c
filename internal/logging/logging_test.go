package logging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetFile: logfile changed on SIGHUP moves the output; a path that
// cannot be opened keeps the current file.
func TestSetFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	l, err := New(a, "info")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("one")
	if err := l.SetFile(b); err != nil {
		t.Fatal(err)
	}
	l.Info("two")
	if err := l.SetFile(filepath.Join(dir, "missing", "c.log")); err == nil {
		t.Fatal("a log file in a missing directory was accepted")
	}
	l.Info("three")
	for path, want := range map[string][]string{a: {"msg=one"}, b: {"msg=two", "msg=three"}} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(data), "\n"); got != len(want) {
			t.Errorf("%s has %d lines, want %d:\n%s", path, got, len(want), data)
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s lacks %s:\n%s", path, w, data)
			}
		}
	}
}
