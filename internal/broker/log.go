package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"
)

// natsLogger routes the embedded engine's log through slog.
type natsLogger struct {
	log *slog.Logger
	// fatal is told about Fatalf: the engine expects the process to exit
	// there, we stop the broker instead.
	fatal func(msg string)
	// filters see every line first; one that returns false has handled it.
	filters []func(msg string) bool
	// limiter bounds the warnings and errors about single connections,
	// which a peer can cause at will (nil: no limit).
	limiter *logLimiter
}

// connLine is how the engine starts a line about one connection:
// "10.1.2.3:51234 - cid:42 - ...", rid for routes, lid leafnodes, gid
// gateways, wid websockets.
var connLine = regexp.MustCompile(`^\S+ - [crlgmw]id:\d+ - (?:"[^"]*" - )?(.*)$`)

// engineReason is a short, bounded name for an engine line's cause, for
// the log limiter's summary: its text up to the first colon.
func engineReason(msg string) string {
	m := connLine.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	r, _, _ := strings.Cut(m[1], ":")
	if len(r) > 40 {
		r = r[:40]
	}
	return r
}

// admissionMarker is in every handshake error our admission returns; the
// engine logs those again, and one line per refusal is enough.
const admissionMarker = "refused by choria-broker admission"

func (l *natsLogger) logf(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) && level < slog.LevelInfo {
		return
	}
	msg := fmt.Sprintf(format, v...)
	for _, f := range l.filters {
		if !f(msg) {
			return
		}
	}
	if level >= slog.LevelWarn && strings.Contains(msg, admissionMarker) {
		level = slog.LevelDebug
		if !l.log.Enabled(context.Background(), level) {
			return
		}
	}
	if level == slog.LevelInfo && strings.Contains(msg, "[not set]") {
		level = slog.LevelDebug // the banner's "Git: [not set]": our build has no engine commit
		if !l.log.Enabled(context.Background(), level) {
			return
		}
	}
	if level >= slog.LevelWarn && l.limiter != nil {
		if r := engineReason(msg); r != "" && !l.limiter.allow(limitEngine, r) {
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

// throttle lets a repeated message through once per period per key: a
// refused peer retries every second, and one line a minute says enough.
type throttle struct {
	mu     sync.Mutex
	period time.Duration
	last   map[string]time.Time
}

func newThrottle(period time.Duration) *throttle {
	return &throttle{period: period, last: map[string]time.Time{}}
}

func (t *throttle) allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.period {
		return false
	}
	if len(t.last) > 10000 {
		clear(t.last) // bounded memory under a flood of distinct keys
	}
	t.last[key] = now
	return true
}

// routeAuthFailure is how the engine reports a peer with the wrong routes
// user or password.
const routeAuthFailure = "Router connection closed: Authentication Failure"

// explainRouteAuth turns the engine's bare route authentication failure
// into what to fix, once a minute per peer. It returns false when it
// handled the line.
func (b *Broker) explainRouteAuth(msg string) bool {
	if !strings.Contains(msg, routeAuthFailure) {
		return true
	}
	remote := msg
	if i := strings.Index(msg, " - "); i > 0 {
		remote = msg[:i]
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	b.peersRefused.add(routePassword)
	if b.peerLog.allow("routeauth "+remote) && b.limiter.allow(limitPeers, routePassword) {
		b.log.Warn("cluster peer refused: wrong routes user or password; plugin.choria.network.peer_user and peer_password must be the same on every member", "remote", remote)
	}
	return false
}
