package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin loads path, failing the test when that takes longer than
// 10 s: a FIFO must not block the loader waiting for a writer.
func loadWithin(t *testing.T, path string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Load(path)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%s) still blocked after 10s", path)
		return nil, nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusesNonRegularFiles: the main file must be a regular file;
// the error names it and what it is.
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "broker.conf")
	mkfifo(t, fifo)
	cases := map[string]string{
		fifo: "a FIFO",
		dir:  "a directory",
	}
	if fi, err := os.Stat("/dev/zero"); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cases["/dev/zero"] = "a character device"
	}
	for path, what := range cases {
		_, err := loadWithin(t, path)
		want := path + ": not a regular file (" + what + "); a configuration must be a regular text file"
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	}
}

// TestPluginDirSkipsNonRegularFiles: a FIFO in plugin.d is skipped with a
// warning naming it, promptly, and the rest of the configuration loads.
func TestPluginDirSkipsNonRegularFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := filepath.Join(dir, "broker.conf")
	writeFile(t, main, []byte("identity = b.example.net\n"))
	if err := os.Mkdir(filepath.Join(dir, "plugin.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "plugin.d", "a.cfg")
	mkfifo(t, fifo)
	writeFile(t, filepath.Join(dir, "plugin.d", "b.cfg"), []byte("colour = blue\n"))
	c, err := loadWithin(t, main)
	if err != nil {
		t.Fatal(err)
	}
	want := fifo + ": skipped: not a regular file (a FIFO); a configuration must be a regular text file"
	if len(c.Warnings) != 1 || c.Warnings[0] != want {
		t.Errorf("Warnings = %q\nwant [%s]", c.Warnings, want)
	}
	if c.Raw["plugin.b.colour"] != "blue" {
		t.Error("plugin.d/b.cfg after the FIFO was not read")
	}
}

// TestLoadSizeCap: a file over MaxFileSize is refused without being read
// whole, in the main file and in plugin.d alike.
func TestLoadSizeCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := []byte("# " + strings.Repeat("x", MaxFileSize) + "\n")
	main := filepath.Join(dir, "broker.conf")
	writeFile(t, main, big)
	want := main + ": larger than 1 MiB, the limit for a configuration file; is this the right file?"
	if _, err := Load(main); err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	writeFile(t, main, []byte("identity = b.example.net\n"))
	if err := os.Mkdir(filepath.Join(dir, "plugin.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "plugin.d", "big.cfg")
	writeFile(t, plugin, big)
	want = plugin + ": larger than 1 MiB, the limit for a configuration file; is this the right file?"
	if _, err := Load(main); err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	// Exactly the cap is still read.
	writeFile(t, plugin, []byte("# "+strings.Repeat("x", MaxFileSize-3)+"\n"))
	if _, err := Load(main); err != nil {
		t.Errorf("a file of exactly %d bytes: %v", MaxFileSize, err)
	}
}

// TestNotText: binary content gets one error, not one per line.
func TestNotText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"nul", append([]byte("identity = a\n"), 0, 1, 2, '\n'), "x.conf: not a text file: a NUL byte at offset 13; is this the right file?"},
		{"utf16", []byte{0xff, 0xfe, 'i', 0, 'd', 0}, "x.conf: not a text file: it is UTF-16; save it as UTF-8"},
		{"latin1", []byte("identity = caf\xe9\n"), "x.conf: not a text file: not valid UTF-8; is this the right file?"},
	}
	for _, tt := range tests {
		_, err := Parse("x.conf", tt.data)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: got  %v\nwant %s", tt.name, err, tt.want)
		}
	}
	// A character cut by the 1 KB window is not a reason to refuse.
	text := "identity = a\n#" + strings.Repeat("x", 1024-15) + "é\n"
	if _, err := Parse("x.conf", []byte(text)); err != nil {
		t.Errorf("UTF-8 cut at 1 KB refused: %v", err)
	}
}

// TestErrorCap: a file of garbage reports maxErrors problems and how many
// more there were.
func TestErrorCap(t *testing.T) {
	t.Parallel()
	text := "identity = a\n" + strings.Repeat("garbage\n", 1000)
	_, err := Parse("x.conf", []byte(text))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), maxErrors+1, err)
	}
	if lines[0] != `x.conf:2: "garbage": not a "key = value" line; comments start with #` {
		t.Errorf("first line %q", lines[0])
	}
	if want := "x.conf: ... and 980 more errors"; lines[maxErrors] != want {
		t.Errorf("last line %q, want %q", lines[maxErrors], want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Error("not a *config.Error")
	}
}

// TestDuplicateAcrossPluginDir: a key in the main file and again in
// plugin.d is warned about with both places; plugin.d, read last, wins.
func TestDuplicateAcrossPluginDir(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/plugind/broker.conf")
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join("testdata/plugind/plugin.d", "choria.cfg")
	want := []string{
		plugin + ":2: plugin.choria.stats_port: set again here, first at testdata/plugind/broker.conf:2; the last one wins, as in Choria: remove the one you do not mean",
		plugin + ":3: plugin.choria.network.client_port: set again here, first at testdata/plugind/broker.conf:3; the last one wins, as in Choria: remove the one you do not mean",
	}
	if strings.Join(c.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("Warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
	if c.StatsPort != 1 || c.Where("plugin.choria.stats_port") != plugin+":2" {
		t.Errorf("stats_port = %d from %q; want 1 from %s:2", c.StatsPort, c.Where("plugin.choria.stats_port"), plugin)
	}
}

// TestListenAddressAccepts: the forms an operator writes.
func TestListenAddressAccepts(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"::", "0.0.0.0", "127.0.0.1", "::1", "fe80::1%eth0", "localhost", "broker.example.net", "broker-1.example.net.", "b1"} {
		if msg := checkListenAddress(ok); msg != "" {
			t.Errorf("%q refused: %s", ok, msg)
		}
	}
	for _, bad := range []string{"999.1.1.1", "1.2.3", "-broker", "broker_1.example.net", "a..b", "broker.example.net:4222", "10.0.0.0/8", "[::1]"} {
		if checkListenAddress(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}
