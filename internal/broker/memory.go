package broker

import (
	"context"
	"runtime/debug"
	"time"
)

// trimsPerBurst: handshake-deep stacks of 32 KiB come down to the 8 KiB an
// idle connection needs in two halvings; a third catches stragglers.
const trimsPerBurst = 3

// trimAfterBursts returns memory to the system once a burst of
// connections has settled. A reconnect storm leaves behind the garbage of
// thousands of TLS handshakes and handshake-deep goroutine stacks; the Go
// runtime keeps that memory for reuse, which at 10 000 nodes is a quarter
// of the broker's RSS. A forced collection hands the idle heap back and
// halves each stack that is less than a quarter used, so it runs a few
// times, one period apart: a few collections per burst.
func (b *Broker) trimAfterBursts(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen uint64
	trims := 0 // still to do once calm
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := b.Admitted() + b.Handshakes().Admitted
		switch {
		case n != seen:
			seen, trims = n, trimsPerBurst // still connecting: wait for calm
		case trims > 0:
			debug.FreeOSMemory()
			trims--
		}
	}
}
