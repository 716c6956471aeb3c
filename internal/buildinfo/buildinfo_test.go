package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestVersionAndCommit(t *testing.T) {
	t.Parallel()
	rev := "fd705d62d0adaebaa101b96eccaecfccb3e028c1"
	stamped := func(mv, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: mv}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified},
		}}
	}
	plain := func(mv string) *debug.BuildInfo { return &debug.BuildInfo{Main: debug.Module{Version: mv}} }
	for _, c := range []struct {
		name, linkedV, linkedC string
		bi                     *debug.BuildInfo
		version, commit        string
	}{
		{"make build", "v1.2.3-4-gabc", "abc123", stamped("(devel)", "false"), "v1.2.3-4-gabc", "abc123"},
		{"make build without git", "development", "", nil, "development", "unknown"},
		{"go build in a clean checkout", "", "", stamped("v0.0.0-20261125080504-fd705d62d0ad", "false"), "devel-fd705d62d0ad", rev},
		{"go build in a dirty checkout", "", "", stamped("v0.0.0-20261125080504-fd705d62d0ad+dirty", "true"), "devel-fd705d62d0ad-dirty", rev},
		{"go build on a tag", "", "", stamped("v1.4.0", "false"), "v1.4.0", rev},
		{"go install at a tag", "", "", plain("v1.4.0"), "v1.4.0", "unknown"},
		{"go install at a commit", "", "", plain("v0.0.0-20261125080504-fd705d62d0ad"), "v0.0.0-20261125080504-fd705d62d0ad", "fd705d62d0ad"},
		{"go run, go test, -buildvcs=false, a worktree", "", "", plain("(devel)"), "development", "unknown"},
		{"no build info", "", "", nil, "development", "unknown"},
	} {
		if got := versionOf(c.linkedV, c.bi); got != c.version {
			t.Errorf("%s: version %q, want %q", c.name, got, c.version)
		}
		if got := commitOf(c.linkedC, c.bi); got != c.commit {
			t.Errorf("%s: commit %q, want %q", c.name, got, c.commit)
		}
	}
}
