package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input may panic, and every failure must explain itself.
func FuzzParse(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext == ".conf" || ext == ".cfg" {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.Add(b)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("=\n==\n#=\n x = \n"))
	f.Add([]byte("plugin.choria.network.write_deadline = 1.5d3w2M1Y\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data)
		if err != nil {
			if c != nil {
				t.Error("config returned with an error")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Error("empty error text")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%v is not a *config.Error", err)
			}
			return
		}
		if c.Raw == nil || len(c.Collectives) == 0 || c.Identity == "" {
			t.Errorf("incomplete config: %+v", c)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Parse accepted what Validate rejects: %v", err)
		}
	})
}
