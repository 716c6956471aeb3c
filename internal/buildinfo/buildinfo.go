// Package buildinfo says which build of choria-broker is running.
package buildinfo

import (
	"regexp"
	"runtime/debug"
)

// version and commit are set at link time, as make build does:
// -ldflags "-X .../internal/buildinfo.version=1.2.3 -X .../internal/buildinfo.commit=SHA".
var (
	version = ""
	commit  = ""
)

// Version is the link-time version, else a release module version
// (go install ...@v1.2.3), else devel-<short revision>[-dirty] when Go
// stamped the git checkout it built, else the module's pseudo-version,
// else "development".
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

// Commit is the link-time commit, else the revision Go stamped, else the
// one a pseudo-version names (shortened), else "unknown".
//
// Go stamps nothing for go run, go test, -buildvcs=false, or a git
// worktree or submodule (its .git is a file, and go looks for a directory).
func Commit() string {
	bi, _ := debug.ReadBuildInfo()
	return commitOf(commit, bi)
}

// pseudo matches the tail of a Go pseudo-version, v0.0.0-20060102150405-abcdefabcdef[+dirty].
var pseudo = regexp.MustCompile(`\d{14}-([0-9a-f]{12})(\+dirty)?$`)

func versionOf(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "development"
	}
	mv := bi.Main.Version
	if mv != "" && mv != "(devel)" && !pseudo.MatchString(mv) {
		return mv
	}
	if rev := setting(bi, "vcs.revision"); rev != "" {
		v := "devel-" + short(rev)
		if setting(bi, "vcs.modified") == "true" {
			v += "-dirty"
		}
		return v
	}
	if mv != "" && mv != "(devel)" {
		return mv
	}
	return "development"
}

func commitOf(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "unknown"
	}
	if rev := setting(bi, "vcs.revision"); rev != "" {
		return rev
	}
	if m := pseudo.FindStringSubmatch(bi.Main.Version); m != nil {
		return m[1]
	}
	return "unknown"
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
