package broker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// logLimit bounds the lines of one kind that peers can make the broker
// write: anyone who reaches the client port can be refused thousands of
// times a second, and the disk must not fill with it.
type logLimit struct {
	Burst  int           // lines of a kind logged at once
	Every  time.Duration // then one more line per Every
	Period time.Duration // how often the lines not logged are summarised
}

// defaultLogLimit lets the first refusals of an incident through in full,
// then at most one line every 5 s and one summary a minute per kind.
var defaultLogLimit = logLimit{Burst: 20, Every: 5 * time.Second, Period: time.Minute}

// maxLogReasons bounds the reasons a summary tells apart; more fall into "other".
const maxLogReasons = 16

// logLimiter is a token bucket per kind of line, and a count by reason of
// the lines it held back. Safe for concurrent use.
type logLimiter struct {
	log   *slog.Logger
	limit logLimit
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*logBucket
	order []string // kinds in first-seen order, for stable summaries
}

type logBucket struct {
	tokens     float64
	last       time.Time
	dropped    uint64            // since the last summary
	total      uint64            // since start
	reasons    map[string]uint64 // since the last summary
	reasonKeys []string          // of reasons, first seen first
}

func newLogLimiter(log *slog.Logger, limit logLimit) *logLimiter {
	return &logLimiter{log: log, limit: limit, now: time.Now, kinds: map[string]*logBucket{}}
}

// allow reports whether a line of kind may be written now; when not, it
// counts the line under reason for the next summary.
func (l *logLimiter) allow(kind, reason string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k, ok := l.kinds[kind]
	if !ok {
		k = &logBucket{tokens: float64(l.limit.Burst), last: now, reasons: map[string]uint64{}}
		l.kinds[kind] = k
		l.order = append(l.order, kind)
	}
	if l.limit.Every > 0 {
		k.tokens = min(float64(l.limit.Burst), k.tokens+float64(now.Sub(k.last))/float64(l.limit.Every))
	}
	k.last = now
	if k.tokens >= 1 {
		k.tokens--
		return true
	}
	k.dropped++
	k.total++
	if _, seen := k.reasons[reason]; !seen && len(k.reasons) >= maxLogReasons {
		reason = "other"
	}
	if _, seen := k.reasons[reason]; !seen {
		k.reasonKeys = append(k.reasonKeys, reason)
	}
	k.reasons[reason]++
	return false
}

// suppressed is how many lines of kind were held back since start.
func (l *logLimiter) suppressed(kind string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.kinds[kind]; ok {
		return k.total
	}
	return 0
}

// flush logs one summary line per kind that held lines back since the last.
func (l *logLimiter) flush() {
	type summary struct {
		kind    string
		dropped uint64
		reasons string
	}
	var out []summary
	l.mu.Lock()
	for _, kind := range l.order {
		k := l.kinds[kind]
		if k.dropped == 0 {
			continue
		}
		keys := slices.Clone(k.reasonKeys)
		slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(k.reasons[b], k.reasons[a]) })
		parts := make([]string, len(keys))
		for i, r := range keys {
			parts[i] = fmt.Sprintf("%s: %d", r, k.reasons[r])
		}
		out = append(out, summary{kind, k.dropped, strings.Join(parts, ", ")})
		k.dropped, k.reasons, k.reasonKeys = 0, map[string]uint64{}, nil
	}
	l.mu.Unlock()
	for _, s := range out {
		l.log.Warn(s.kind+": more lines not logged (rate limit; all are counted in the metrics)",
			"not_logged", s.dropped, "period", l.limit.Period, "by_reason", s.reasons)
	}
}

// run summarises every Period until ctx ends, then once more so that
// nothing counted goes unsaid.
func (l *logLimiter) run(ctx context.Context) {
	t := time.NewTicker(l.limit.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flush()
			return
		case <-t.C:
			l.flush()
		}
	}
}
