package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// MaxFileSize caps every file read: a configuration is a few KB, and
// reading /dev/zero or a log file by mistake must not eat the memory.
const MaxFileSize = 1 << 20

// maxErrors is how many problems one load reports; a binary or foreign
// file would otherwise give one per line.
const maxErrors = 20

// Load reads the main file, then every *.cfg and *.conf in the plugin.d
// directory beside it (sorted, keys prefixed with plugin.<basename>.),
// applies defaults and validates. All problems are returned together.
//
// Only regular files are read, up to MaxFileSize, and only text: the main
// file being a FIFO, device, directory or socket is an error, while such
// an entry in plugin.d is skipped with a warning, as a directory there is.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Err: err,
			Msg: `configuration file not found; run "choria-broker dev" for a development broker, or pass --config with the path to your broker.conf`}
	}
	if err != nil {
		return nil, err
	}
	p := newParser(path)
	p.parseFile(path, data, "")
	p.parsePluginDir(filepath.Join(filepath.Dir(path), "plugin.d"))
	return p.finish()
}

// errNotRegular marks a path that is not a regular file.
var errNotRegular = errors.New("not a regular file")

// readFile reads a regular file of at most MaxFileSize bytes. It opens
// without blocking, so that a FIFO cannot hang the caller (a SIGHUP
// handler, say) waiting for a writer, and checks what it opened.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, &Error{File: path, Err: err, Msg: "cannot read the configuration file: " + err.Error()}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Err: err, Msg: "cannot read the configuration file: " + err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Err: errNotRegular,
			Msg: "not a regular file (" + fileType(fi.Mode()) + "); a configuration must be a regular text file"}
	}
	if fi.Size() > MaxFileSize {
		return nil, tooBig(path)
	}
	// The size can grow between Stat and reading: read one byte past the cap.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Err: err, Msg: "cannot read the configuration file: " + err.Error()}
	}
	if len(data) > MaxFileSize {
		return nil, tooBig(path)
	}
	return data, nil
}

func tooBig(path string) *Error {
	return &Error{File: path, Msg: "larger than " + strconv.Itoa(MaxFileSize>>20) + " MiB, the limit for a configuration file; is this the right file?"}
}

// fileType names a non-regular file's type for messages.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "type " + m.Type().String()
}

// notText says why data is not a text file, or "". Only the start is
// checked: that is where a binary file shows itself, and the rest then
// fails line by line, up to maxErrors.
func notText(data []byte) string {
	head := data[:min(len(data), 1024)]
	if bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		return "not a text file: it is UTF-16; save it as UTF-8"
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return fmt.Sprintf("not a text file: a NUL byte at offset %d; is this the right file?", i)
	}
	// A character cut at the end of head is not an error.
	for cut := 0; cut < utf8.UTFMax && len(head) == 1024; cut++ {
		if r, _ := utf8.DecodeLastRune(head); r != utf8.RuneError {
			break
		}
		head = head[:len(head)-1]
	}
	if !utf8.Valid(head) {
		return "not a text file: not valid UTF-8; is this the right file?"
	}
	return ""
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
	more   int             // errors beyond maxErrors, counted only
	warns  []*Error        // misspellings and keys set twice, also shown with errors
	failed map[string]bool // keys with a bad value, so cross-field rules skip them
}

func newParser(name string) *parser {
	c := staticDefaults()
	c.File = name
	c.where = map[string]string{}
	return &parser{c: c, failed: map[string]bool{}}
}

// fail records a problem, keeping the first maxErrors.
func (p *parser) fail(e *Error) {
	if len(p.errs) >= maxErrors {
		p.more++
		return
	}
	p.errs = append(p.errs, e)
}

// parsePluginDir reads plugin.d; a missing directory is normal.
func (p *parser) parsePluginDir(dir string) {
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.fail(&Error{File: dir, Err: err, Msg: "cannot read the plugin.d directory: " + err.Error()})
		return
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		base := strings.TrimSuffix(e.Name(), ext)
		if e.IsDir() || base == "" || (ext != ".cfg" && ext != ".conf") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		data, err := readFile(file)
		if errors.Is(err, errNotRegular) {
			// Like a directory: not a settings file, whatever its name.
			p.warns = append(p.warns, &Error{File: file, Msg: "skipped: " + err.(*Error).Msg})
			continue
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{File: file, Err: err, Msg: "cannot read: " + err.Error()}
			}
			p.fail(e)
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
	if msg := notText(data); msg != "" {
		p.fail(&Error{File: file, Msg: msg})
		return
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
			p.fail(&Error{File: file, Line: i + 1, Value: line, Msg: `not a "key = value" line; comments start with #`})
		case key == "":
			p.fail(&Error{File: file, Line: i + 1, Value: line, Msg: `no setting name before "="`})
		case value == "":
			// Choria ignores "key =" lines, so an empty value keeps the default.
		default:
			p.apply(file, i+1, prefix+key, value)
		}
	}
}

// apply stores one key = value; Raw keeps only values that were accepted.
func (p *parser) apply(file string, line int, key, value string) {
	here := file + ":" + strconv.Itoa(line)
	if file == "" {
		here = "line " + strconv.Itoa(line)
	}
	if before, ok := p.c.where[key]; ok {
		p.warns = append(p.warns, &Error{File: file, Line: line, Key: key,
			Msg: "set again here, first at " + before + "; the last one wins, as in Choria: remove the one you do not mean"})
	}
	p.c.where[key] = here
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
		p.fail(&Error{File: file, Line: line, Key: key, Value: value, Msg: msg})
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
	p.readMappings()
	p.readGateways()
	warns := capped(p.warns, 0, c.File, "warnings")
	for _, w := range warns {
		c.Warnings = append(c.Warnings, w.Error())
	}
	var errs []*Error
	errs = append(errs, p.errs...)
	errs = append(errs, c.validate(p.failed)...)
	if len(errs) > 0 {
		errs = capped(errs, p.more, c.File, "errors")
		errs = append(errs, warns...)
		return nil, joinErrors(errs)
	}
	return c, nil
}

// capped keeps the first maxErrors of list and says how many more there
// were, extra (not kept) included.
func capped(list []*Error, extra int, file, what string) []*Error {
	more := extra + len(list) - maxErrors
	if len(list) > maxErrors {
		list = list[:maxErrors]
	}
	if more <= 0 {
		return list
	}
	return append(list, &Error{File: file, Msg: fmt.Sprintf("... and %d more %s", more, what)})
}
