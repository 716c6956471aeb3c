// Package logging sets up the broker's slog logger from Choria's logfile
// and loglevel settings, with a level and a file that SIGHUP can change.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// Logger is a slog.Logger whose level and output file can be changed while
// it is in use.
type Logger struct {
	*slog.Logger
	level *slog.LevelVar
	out   *reopener
}

// New logs to path ("" or "stdout"/"stderr" for the terminal) at level.
func New(path, level string) (*Logger, error) {
	lv := new(slog.LevelVar)
	if err := setLevel(lv, level); err != nil {
		return nil, err
	}
	out := &reopener{path: path}
	if err := out.reopen(); err != nil {
		return nil, err
	}
	h := slog.NewTextHandler(out, &slog.HandlerOptions{Level: lv})
	return &Logger{Logger: slog.New(h), level: lv, out: out}, nil
}

// Discard is a logger that writes nothing, for tests.
func Discard() *Logger {
	return &Logger{Logger: slog.New(slog.DiscardHandler), level: new(slog.LevelVar), out: &reopener{w: io.Discard}}
}

// SetLevel changes the level (debug, info, warn, error).
func (l *Logger) SetLevel(level string) error { return setLevel(l.level, level) }

// Reopen reopens the log file, after logrotate moved it away.
func (l *Logger) Reopen() error { return l.out.reopen() }

// SetFile moves the output to path, as New takes it (logfile changed on
// SIGHUP); on error the current output stays.
func (l *Logger) SetFile(path string) error { return l.out.switchTo(path) }

// Close closes the log file.
func (l *Logger) Close() error { return l.out.close() }

func setLevel(lv *slog.LevelVar, level string) error {
	switch strings.ToLower(level) {
	case "debug":
		lv.Set(slog.LevelDebug)
	case "", "info":
		lv.Set(slog.LevelInfo)
	case "warn", "warning":
		lv.Set(slog.LevelWarn)
	case "error", "fatal":
		lv.Set(slog.LevelError)
	default:
		return fmt.Errorf("loglevel %q: use debug, info, warn or error", level)
	}
	return nil
}

// reopener is an io.Writer over a file that can be swapped under writers.
type reopener struct {
	mu   sync.Mutex
	path string
	w    io.Writer
	f    *os.File
}

func (r *reopener) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Write(p)
}

func (r *reopener) reopen() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.openLocked(r.path)
}

// switchTo moves the output to path; on error the current one stays.
func (r *reopener) switchTo(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.openLocked(path)
}

func (r *reopener) openLocked(path string) error {
	var w io.Writer
	var f *os.File
	switch path {
	case "", "stdout", "-":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return fmt.Errorf("logfile %s: %w", path, err)
		}
		w = f
	}
	if r.f != nil {
		r.f.Close()
	}
	r.path, r.f, r.w = path, f, w
	return nil
}

func (r *reopener) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.w = nil, io.Discard
	return err
}
