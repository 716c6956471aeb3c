// Command deb builds the choria-broker Debian package: the contents and
// maintainer scripts listed in nfpm.yaml, packed by nfpm used as a library.
// `make deb` runs it; it is a module of its own so nfpm's dependencies stay
// out of the broker's go.mod.
//
//	go run . -root ../.. -binary ../../bin/deb/choria-broker -version v1.2.3 -out ../../bin
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	root := flag.String("root", ".", "repository root; nfpm.yaml's paths are relative to it")
	config := flag.String("config", "dist/deb/nfpm.yaml", "nfpm configuration, relative to -root")
	binary := flag.String("binary", "bin/deb/choria-broker", "a linux build of ./cmd/choria-broker")
	version := flag.String("version", "development", "version (git describe); made a Debian version")
	arch := flag.String("arch", "amd64", "Go architecture (GOARCH); nfpm names the Debian one")
	out := flag.String("out", "bin", "directory for the .deb")
	flag.Parse()

	path, err := build(*root, *config, *binary, debVersion(*version), *arch, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build packs the package into out and returns its path. Relative
// binary and out paths are taken from the current directory.
func build(root, config, binary, version, arch, out string) (string, error) {
	binary, err := filepath.Abs(binary)
	if err != nil {
		return "", err
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", err
	}
	if _, err := os.Stat(binary); err != nil {
		return "", fmt.Errorf("-binary: %w (make deb builds it)", err)
	}
	if err := os.Chdir(root); err != nil {
		return "", fmt.Errorf("-root: %w", err)
	}
	env := map[string]string{"DEB_BINARY": binary, "DEB_VERSION": version, "GOARCH": arch}
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(k string) string { return env[k] })
	if err != nil {
		return "", fmt.Errorf("%s: %w", config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("%s: %w", config, err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}

var (
	describe = regexp.MustCompile(`^(.*?)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)
	invalid  = regexp.MustCompile(`[^A-Za-z0-9.+~]+`)
)

// debVersion makes a Debian version of a git describe version: v1.2.3 is
// 1.2.3, v1.2.3-rc1 is 1.2.3~rc1 (before 1.2.3), v1.2.3-4-gabc1234-dirty
// (four commits on) is 1.2.3+4.gabc1234.dirty (after it), and anything
// that does not start with a digit, such as an untagged commit, sorts
// before every release as 0.0.0~<it>.
func debVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	base, extra := v, ""
	if m := describe.FindStringSubmatch(v); m != nil {
		base, extra = m[1], "+"+m[2]+".g"+m[3]
		if m[4] != "" {
			extra += ".dirty"
		}
	} else if b, ok := strings.CutSuffix(v, "-dirty"); ok {
		base, extra = b, "+dirty"
	}
	base = strings.ReplaceAll(base, "-", "~")
	v = invalid.ReplaceAllString(base+extra, ".")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0~" + strings.TrimLeft(v, ".+~")
	}
	return v
}
