package broker

import (
	"context"
	"runtime/debug"
	"time"
)

// trimAfterBursts returns memory to the system once a burst of
// connections has settled. A reconnect storm leaves behind the garbage of
// thousands of TLS handshakes and handshake-deep goroutine stacks; the Go
// runtime keeps that memory for reuse, which at 10 000 nodes is a quarter
// of the broker's RSS. A forced collection shrinks the stacks and hands the
// idle heap back, at the cost of one collection per burst.
func (b *Broker) trimAfterBursts(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen uint64
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := b.Admitted() + b.Handshakes().Admitted
		switch {
		case n != seen:
			seen, dirty = n, true // still connecting: wait for calm
		case dirty:
			debug.FreeOSMemory()
			dirty = false
		}
	}
}
