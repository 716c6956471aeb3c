package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// natsLogger routes the embedded engine's log through slog.
type natsLogger struct {
	log *slog.Logger
	// fatal is told about Fatalf: the engine expects the process to exit
	// there, we stop the broker instead.
	fatal func(msg string)
}

// admissionMarker is in every handshake error our admission returns; the
// engine logs those again, and one line per refusal is enough.
const admissionMarker = "refused by choria-broker admission"

func (l *natsLogger) logf(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	msg := fmt.Sprintf(format, v...)
	if level >= slog.LevelWarn && strings.Contains(msg, admissionMarker) {
		level = slog.LevelDebug
		if !l.log.Enabled(context.Background(), level) {
			return
		}
	}
	l.log.Log(context.Background(), level, msg, "component", "nats")
}

func (l *natsLogger) Noticef(format string, v ...any) { l.logf(slog.LevelInfo, format, v) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }

// Tracef is protocol tracing; it only runs when the engine's trace is on.
func (l *natsLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v) }

func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg, "component", "nats", "fatal", true)
	if l.fatal != nil {
		l.fatal(msg)
	}
}
