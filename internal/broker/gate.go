package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// gate bounds the TLS handshakes in flight on the client port. After a
// broker restart thousands of nodes reconnect at once; started all
// together, their handshakes share the CPU so thinly that most overrun the
// TLS timeout and are abandoned, and the broker spends its CPU on work it
// throws away. The gate admits only as many as can finish in time and
// refuses the rest at the ClientHello, before any expensive cryptography;
// refused nodes back off and retry.
//
// The limit follows Little's law: handshakes completed per second times
// the time one may take (a quarter of the TLS timeout), between a floor and
// a ceiling, so it fits the machine and the key size without tuning.
// Measured at 10 000 nodes on 2 cores: a tenth of the timeout sheds so
// much that refused nodes climb their back-off tables and recovery takes
// 2.5 minutes; half of it varied from 45 s to 2.5 minutes; a quarter gave
// 42-70 s.
type gate struct {
	fixed   int64 // > 0: a fixed limit from plugin.choria.network.handshake_limit
	floor   int64
	ceiling int64
	target  time.Duration // the handshake time the limit is sized for
	timeout time.Duration // a slot is freed at the latest after this

	inFlight  atomic.Int64
	limit     atomic.Int64
	admitted  atomic.Uint64
	shed      atomic.Uint64
	completed atomic.Uint64
	expired   atomic.Uint64

	mu          sync.Mutex
	windowStart time.Time
	windowDone  uint64  // completed at window start
	rate        float64 // completions per second, smoothed
}

// Admission sizes, from measurements on 2-core machines: below 64 slots
// recovery barely improved, and an adaptive limit without a floor fell to 2
// at a storm's start.
const (
	gateFloor   = 64
	gateCeiling = 4096
	gateWindow  = 250 * time.Millisecond
)

func newGate(fixed int, tlsTimeout time.Duration) *gate {
	g := &gate{fixed: int64(fixed), floor: gateFloor, ceiling: gateCeiling, target: tlsTimeout / 4, timeout: tlsTimeout, windowStart: time.Now()}
	if g.fixed > 0 {
		g.limit.Store(g.fixed)
	} else {
		g.limit.Store(g.floor)
	}
	return g
}

// enter admits a handshake, returning the function that frees its slot
// (call it with true when the handshake reached certificate verification),
// or ok false when the handshake must be refused.
func (g *gate) enter(now time.Time) (release func(completed bool), ok bool) {
	g.adapt(now)
	if g.inFlight.Add(1) > g.limit.Load() {
		g.inFlight.Add(-1)
		g.shed.Add(1)
		return nil, false
	}
	g.admitted.Add(1)
	var once sync.Once
	free := func(completed bool) {
		once.Do(func() {
			g.inFlight.Add(-1)
			if completed {
				g.completed.Add(1)
			} else {
				g.expired.Add(1)
			}
		})
	}
	// A handshake that fails before verification never calls back; its
	// slot comes free when the engine's TLS timeout would have closed it.
	timer := time.AfterFunc(g.timeout, func() { free(false) })
	return func(completed bool) {
		timer.Stop()
		free(completed)
	}, true
}

// adapt recomputes the limit once per window from the completion rate.
func (g *gate) adapt(now time.Time) {
	if g.fixed > 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	elapsed := now.Sub(g.windowStart)
	if elapsed < gateWindow {
		return
	}
	done := g.completed.Load()
	r := float64(done-g.windowDone) / elapsed.Seconds()
	if elapsed > 4*gateWindow {
		g.rate = r // idle for a while: start afresh
	} else {
		g.rate = 0.5*g.rate + 0.5*r
	}
	g.windowStart, g.windowDone = now, done
	l := int64(g.rate * g.target.Seconds())
	g.limit.Store(min(max(l, g.floor), g.ceiling))
}

// GateStats are the admission counters.
type GateStats struct {
	Limit, InFlight                     int64
	Admitted, Shed, Completed, TimedOut uint64
}

func (g *gate) stats() GateStats {
	return GateStats{
		Limit: g.limit.Load(), InFlight: g.inFlight.Load(),
		Admitted: g.admitted.Load(), Shed: g.shed.Load(), Completed: g.completed.Load(), TimedOut: g.expired.Load(),
	}
}
