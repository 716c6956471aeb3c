// Package buildinfo says which build of choria-broker is running.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X .../internal/buildinfo.version=1.2.3".
var version = ""

// Version is the release version, or the module version, or "development".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "development"
}

// Commit is the VCS revision the binary was built from, when Go recorded it.
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
