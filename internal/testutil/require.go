// Package testutil holds helpers for tests that run real programs.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI, where a missing program is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireProgram returns the path of a program the test runs. When it is
// missing the test skips on a laptop and fails in CI, where .ci/run
// installs it.
func RequireProgram(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is not installed, and CI=true: .ci/install-deps.sh must install it", name)
		}
		t.Skipf("%s is not installed; skipping (CI installs it)", name)
	}
	return path
}
