package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// withLogLimit is a startBroker option that sets the log limit.
func withLogLimit(l logLimit) func(*Broker) {
	return func(b *Broker) { b.limiter.limit = l }
}

// TestLogLimiter drives the limiter with a fake clock: a burst, then one
// line per Every, and a summary of what was held back, by reason.
func TestLogLimiter(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	l := newLogLimiter(slog.New(slog.NewTextHandler(logs, nil)), logLimit{Burst: 3, Every: time.Second, Period: time.Minute})
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }

	allowed := 0
	for i := range 10 {
		if l.allow("client connection refused", []string{"no certificate", "revoked"}[i%2]) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("burst of 3 let %d lines through", allowed)
	}
	if l.allow("subject refused", "publish") != true {
		t.Fatal("another kind has a bucket of its own")
	}
	now = now.Add(2500 * time.Millisecond) // two whole tokens back
	allowed = 0
	for range 5 {
		if l.allow("client connection refused", "no certificate") {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("after 2.5s, %d lines through, want 2", allowed)
	}
	if got := l.suppressed("client connection refused"); got != 10 {
		t.Fatalf("suppressed %d, want 10", got)
	}

	l.flush()
	sum := logs.lines("client connection refused: more lines not logged")
	if len(sum) != 1 {
		t.Fatalf("want one summary line, got:\n%s", logs)
	}
	for _, want := range []string{"not_logged=10", `by_reason="no certificate: 6, revoked: 4"`, "period=1m0s"} {
		if !strings.Contains(sum[0], want) {
			t.Errorf("summary lacks %s: %s", want, sum[0])
		}
	}
	if len(logs.lines("subject refused")) != 0 {
		t.Errorf("a kind that held nothing back was summarised:\n%s", logs)
	}
	l.flush() // nothing new: no line
	if n := len(logs.lines("more lines not logged")); n != 1 {
		t.Errorf("an empty period was summarised (%d summaries)", n)
	}

	// A flood of distinct reasons keeps a bounded table.
	for i := range 1000 {
		l.allow("client connection refused", fmt.Sprint("reason ", i))
	}
	l.mu.Lock()
	n := len(l.kinds["client connection refused"].reasons)
	l.mu.Unlock()
	if n > maxLogReasons+1 {
		t.Errorf("%d reasons kept, want at most %d", n, maxLogReasons+1)
	}
}

// TestLogLimiterConcurrent: safe under -race, every line either logged or counted.
func TestLogLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := newLogLimiter(slog.New(slog.DiscardHandler), logLimit{Burst: 5, Every: time.Hour, Period: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	var wg sync.WaitGroup
	var mu sync.Mutex
	logged := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if l.allow("k", "r") {
					mu.Lock()
					logged++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop with its context")
	}
	if uint64(logged)+l.suppressed("k") != 4000 || logged > 6 {
		t.Fatalf("logged %d, suppressed %d of 4000", logged, l.suppressed("k"))
	}
}

// TestDefaultLogLimitSane: the default lets an incident's first lines
// through and bounds a flood to a few hundred lines an hour per kind.
func TestDefaultLogLimitSane(t *testing.T) {
	t.Parallel()
	b, err := New(newTestPKI(t).config(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := b.limiter.limit
	if d != defaultLogLimit {
		t.Errorf("a broker starts with log limit %+v, not the default %+v", d, defaultLogLimit)
	}
	if d.Burst < 10 || d.Burst > 100 {
		t.Errorf("burst %d: want 10-100", d.Burst)
	}
	perHour := float64(d.Burst) + float64(time.Hour)/float64(d.Every) + float64(time.Hour)/float64(d.Period)
	if perHour > 1000 {
		t.Errorf("a flood writes up to %.0f lines an hour per kind; want at most 1000", perHour)
	}
	if d.Period < 10*time.Second || d.Period > 10*time.Minute {
		t.Errorf("summary every %s: want 10s-10m", d.Period)
	}
}
