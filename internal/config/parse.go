package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the main file, then every *.cfg and *.conf in the plugin.d
// directory beside it (sorted, keys prefixed with plugin.<basename>.),
// applies defaults and validates. All problems are returned together.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Err: err,
			Msg: `configuration file not found; run "choria-broker dev" for a development broker, or pass --config with the path to your broker.conf`}
	}
	if err != nil {
		return nil, &Error{File: path, Err: err, Msg: "cannot read the configuration file: " + err.Error()}
	}
	p := newParser(path)
	p.parseFile(path, data, "")
	p.parsePluginDir(filepath.Join(filepath.Dir(path), "plugin.d"))
	return p.finish()
}

// Parse reads one file's content, without plugin.d, applies defaults and
// validates. name is used in messages and as Config.File.
func Parse(name string, data []byte) (*Config, error) {
	p := newParser(name)
	p.parseFile(name, data, "")
	return p.finish()
}

// parser accumulates one configuration from several files.
type parser struct {
	c      *Config
	errs   []*Error
	warns  []*Error        // misspellings, also shown with errors
	failed map[string]bool // keys with a bad value, so cross-field rules skip them
}

func newParser(name string) *parser {
	c := staticDefaults()
	c.File = name
	return &parser{c: c, failed: map[string]bool{}}
}

// parsePluginDir reads plugin.d; a missing directory is normal.
func (p *parser) parsePluginDir(dir string) {
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.errs = append(p.errs, &Error{File: dir, Err: err, Msg: "cannot read the plugin.d directory: " + err.Error()})
		return
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		base := strings.TrimSuffix(e.Name(), ext)
		if e.IsDir() || base == "" || (ext != ".cfg" && ext != ".conf") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(file)
		if err != nil {
			p.errs = append(p.errs, &Error{File: file, Err: err, Msg: "cannot read: " + err.Error()})
			continue
		}
		p.parseFile(file, data, "plugin."+base+".")
	}
}

// parseFile applies one file's lines in order, so later lines win.
func (p *parser) parseFile(file string, data []byte, prefix string) {
	if file != "" {
		p.c.Files = append(p.c.Files, file)
	}
	// Editors on Windows may start a file with a byte order mark, which
	// would otherwise turn the first key into an unknown one, silently.
	text := strings.TrimPrefix(string(data), "\ufeff")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			p.errs = append(p.errs, &Error{File: file, Line: i + 1, Value: line, Msg: `not a "key = value" line; comments start with #`})
		case key == "":
			p.errs = append(p.errs, &Error{File: file, Line: i + 1, Value: line, Msg: `no setting name before "="`})
		case value == "":
			// Choria ignores "key =" lines, so an empty value keeps the default.
		default:
			p.apply(file, i+1, prefix+key, value)
		}
	}
}

// apply stores one key = value; Raw keeps only values that were accepted.
func (p *parser) apply(file string, line int, key, value string) {
	s := lookup(key)
	if s == nil {
		if w := misspelling(file, line, key); w != nil {
			p.warns = append(p.warns, w)
		} else {
			p.c.Unknown = append(p.c.Unknown, (&Error{File: file, Line: line, Key: key,
				Msg: "unknown setting, kept for plugins; this broker does not use it"}).Error())
		}
		p.c.Raw[key] = value
		return
	}
	v, msg := s.convert(value)
	if msg != "" {
		p.errs = append(p.errs, &Error{File: file, Line: line, Key: key, Value: value, Msg: msg})
		p.failed[key] = true
		return
	}
	delete(p.failed, key) // a later good line fixes an earlier bad one
	if s.field != nil {
		s.set(p.c, v)
	}
	if s.support != implemented {
		p.noteUnsupported(file, line, key, s, v)
	}
	p.c.Raw[key] = value
}

// finish fills derived defaults and runs the cross-setting rules. On
// failure the misspelling warnings are appended to the errors, since a
// misspelt key often explains a "missing" setting.
func (p *parser) finish() (*Config, error) {
	c := p.c
	deriveDefaults(c)
	for _, w := range p.warns {
		c.Warnings = append(c.Warnings, w.Error())
	}
	var errs []*Error
	errs = append(errs, p.errs...)
	errs = append(errs, c.validate(p.failed)...)
	if len(errs) > 0 {
		errs = append(errs, p.warns...)
		return nil, joinErrors(errs)
	}
	return c, nil
}
