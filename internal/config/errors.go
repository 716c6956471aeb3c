package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, located as precisely as we can
// so the user can go straight to the line and fix it.
//
// Error() reads, depending on which fields are set:
//
//	broker.conf:12: plugin.choria.network.client_port = "42x": not a port number (1-65535)
//	broker.conf:3: "foo bar": not a "key = value" line
//	broker.conf: main_collective: "dev" is not one of collectives (mcollective); ...
type Error struct {
	File  string // path as given by the caller
	Line  int    // 1-based; 0 for rules that span settings
	Key   string // the setting, with any plugin.d prefix applied
	Value string // the offending text, as written
	Msg   string // what is wrong and what is allowed
	Err   error  // underlying cause, such as an os error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	switch {
	case e.Key != "" && e.Value != "":
		b.WriteString(e.Key + ` = "` + e.Value + `": `)
	case e.Key != "":
		b.WriteString(e.Key + ": ")
	case e.Value != "":
		b.WriteString(`"` + e.Value + `": `)
	}
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" {
		msg = "invalid configuration"
	}
	b.WriteString(msg)
	return b.String()
}

// Unwrap exposes the cause so callers can test errors.Is(err, fs.ErrNotExist).
func (e *Error) Unwrap() error { return e.Err }

// joinErrors returns nil, the single *Error itself, or all of them joined
// so that a user sees every problem at once.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// KeyError is msg about key, placed at the file:line that set it (the
// main file when no line did), for checks made after parsing.
func (c *Config) KeyError(key, msg string) *Error {
	e := &Error{File: c.File, Key: key, Msg: msg}
	w := c.Where(key)
	if n, err := strconv.Atoi(strings.TrimPrefix(w, "line ")); err == nil {
		e.File, e.Line = "", n // Parse without a file name
	} else if i := strings.LastIndexByte(w, ':'); i > 0 {
		if n, err := strconv.Atoi(w[i+1:]); err == nil {
			e.File, e.Line = w[:i], n
		}
	}
	return e
}
