package broker

import (
	"container/list"
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
// Measured at 10 000 nodes (RSA 2048) on 2 cores shared with the fleet:
// recovery 37-40 s against stock's 62 s, whether excess ClientHellos are
// refused at once or wait (0.5-1.2 s, oldest or newest first); the fleet's
// own CPU and its back-off set the rest. Waiting is kept because it spares
// nodes a failed attempt whenever a slot comes free soon. Tried again with
// go-choria's key exchanges (10 000 nodes, 5 storms each, runs taking
// turns): waits of up to 1.2 s recovered in 37 s where 0.5 s took 25-35 s
// (handshakes outlived the nodes' 2 s timeout); holding a ClientHello 1 s
// before refusing it, so that refused nodes come back less often, cut the
// broker's storm CPU (1.17-1.35× the calm connect's per node, against
// 1.30-1.56×) but not the recovery (RSA 27-42 s against 32-38 s; ECDSA
// 26-28 s against 25-26 s). Neither is kept.
type gate struct {
	fixed   int64 // > 0: a fixed limit from plugin.choria.network.handshake_limit
	floor   int64
	ceiling int64
	target  time.Duration // the handshake time the limit is sized for
	timeout time.Duration // a slot is freed at the latest after this
	maxWait time.Duration // longest a ClientHello waits for a slot

	limit     atomic.Int64
	inFlight  atomic.Int64 // changed under qmu
	admitted  atomic.Uint64
	queued    atomic.Uint64 // admitted after waiting
	shed      atomic.Uint64
	completed atomic.Uint64
	expired   atomic.Uint64
	abandoned atomic.Uint64 // of expired, freed because the client had gone

	qmu     sync.Mutex
	waiters list.List          // of *waiter, oldest first
	held    map[*slot]struct{} // slots whose peer can be watched

	mu          sync.Mutex
	windowStart time.Time
	windowDone  uint64  // completed at window start
	rate        float64 // completions per second, smoothed
}

// waiter is a ClientHello waiting for a slot; granted says a freed slot
// was handed to it.
type waiter struct {
	ch      chan struct{}
	granted bool
}

// Admission sizes, from measurements on 2-core machines: below 64 slots
// recovery barely improved, and an adaptive limit without a floor fell to 2
// at a storm's start.
const (
	gateFloor   = 64
	gateCeiling = 4096
	gateWindow  = 250 * time.Millisecond
	// A client that sends a ClientHello and hangs up would hold its slot
	// for the whole TLS timeout: a few dozen such a second, from anyone,
	// would shed the real fleet. Slots older than gateSweepAge are checked
	// every gateSweepEvery and freed when their peer has gone; younger ones
	// are left alone, as most handshakes finish before then.
	gateSweepEvery = 100 * time.Millisecond
	gateSweepAge   = 200 * time.Millisecond
)

// slot is one admitted handshake; gone, when known, says its client has
// closed or reset the connection.
type slot struct {
	since time.Time
	gone  func() bool
	once  sync.Once
	timer *time.Timer
}

func newGate(fixed int, tlsTimeout time.Duration) *gate {
	g := &gate{fixed: int64(fixed), floor: gateFloor, ceiling: gateCeiling, target: tlsTimeout / 4, timeout: tlsTimeout, maxWait: tlsTimeout / 4, windowStart: time.Now(), held: map[*slot]struct{}{}}
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
//
// A ClientHello that finds every slot taken waits, oldest first, for one
// to come free, as long as the slot can be expected within maxWait: a node
// refused climbs its back-off table (to 20 s in go-choria), so one served
// a little late is worth far more than one sent away. What cannot be
// served in time is refused at once, before any expensive cryptography.
//
// gone, if not nil, tells whether the client has hung up, so that sweep
// can free its slot before the TLS timeout.
func (g *gate) enter(now time.Time, gone func() bool) (release func(completed bool), ok bool) {
	g.adapt(now)
	g.qmu.Lock()
	if g.waiters.Len() == 0 && g.inFlight.Load() < g.limit.Load() {
		g.inFlight.Add(1)
		g.qmu.Unlock()
		return g.admit(now, gone), true
	}
	// About limit slots come free per target handshake time, so a queue
	// longer than limit × maxWait/target would not be served in time.
	if g.maxWait <= 0 || int64(g.waiters.Len()) >= g.limit.Load()*int64(g.maxWait)/int64(g.target) {
		g.qmu.Unlock()
		g.shed.Add(1)
		return nil, false
	}
	w := &waiter{ch: make(chan struct{})}
	e := g.waiters.PushBack(w)
	g.qmu.Unlock()

	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case <-w.ch:
	case <-t.C:
		g.qmu.Lock()
		granted := w.granted
		if !granted {
			g.waiters.Remove(e)
		}
		g.qmu.Unlock()
		if !granted {
			g.shed.Add(1)
			return nil, false
		}
	}
	g.queued.Add(1)
	return g.admit(time.Now(), gone), true
}

// admit counts a handshake that holds a slot and returns its release.
func (g *gate) admit(now time.Time, gone func() bool) func(completed bool) {
	g.admitted.Add(1)
	s := &slot{since: now, gone: gone}
	g.qmu.Lock() // s.timer is read under qmu by sweep
	if gone != nil {
		g.held[s] = struct{}{}
	}
	// A handshake that fails before verification never calls back; its
	// slot comes free when the engine's TLS timeout would have closed it,
	// or sooner when sweep sees its client has gone.
	s.timer = time.AfterFunc(g.timeout, func() { g.free(s, false, false) })
	g.qmu.Unlock()
	return func(completed bool) {
		s.timer.Stop()
		g.free(s, completed, false)
	}
}

// free releases a slot once, whoever gets there first: the handshake's
// verification, its timer or sweep. It says whether this call freed it.
func (g *gate) free(s *slot, completed, abandoned bool) bool {
	freed := false
	s.once.Do(func() {
		freed = true
		switch {
		case completed:
			g.completed.Add(1)
		case abandoned:
			g.abandoned.Add(1)
			g.expired.Add(1)
		default:
			g.expired.Add(1)
		}
		g.qmu.Lock()
		delete(g.held, s)
		g.inFlight.Add(-1)
		g.grant()
		g.qmu.Unlock()
	})
	return freed
}

// sweep frees the slots, held since before now-gateSweepAge, whose client
// has gone, and returns how many it freed.
func (g *gate) sweep(now time.Time) int {
	var old []*slot
	var timers []*time.Timer
	g.qmu.Lock()
	for s := range g.held {
		if now.Sub(s.since) >= gateSweepAge {
			old = append(old, s)
			timers = append(timers, s.timer)
		}
	}
	g.qmu.Unlock()
	n := 0
	// Checked outside the lock: each is a system call.
	for i, s := range old {
		if s.gone() && g.free(s, false, true) {
			timers[i].Stop()
			n++
		}
	}
	return n
}

// sweepEvery runs sweep until stop is closed; one goroutine per broker.
func (g *gate) sweepEvery(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			g.sweep(now)
		}
	}
}

// grant hands free slots to the oldest waiters; called with qmu held.
func (g *gate) grant() {
	for g.waiters.Len() > 0 && g.inFlight.Load() < g.limit.Load() {
		w := g.waiters.Remove(g.waiters.Front()).(*waiter)
		w.granted = true
		g.inFlight.Add(1)
		close(w.ch)
	}
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
	g.qmu.Lock()
	g.grant() // a raised limit serves waiters at once
	g.qmu.Unlock()
}

// GateStats are the admission counters.
type GateStats struct {
	Limit, InFlight, Waiting                    int64
	Admitted, Queued, Shed, Completed, TimedOut uint64
	Abandoned                                   uint64 // of TimedOut, freed early as the client had gone
}

func (g *gate) stats() GateStats {
	g.qmu.Lock()
	waiting := int64(g.waiters.Len())
	g.qmu.Unlock()
	return GateStats{Waiting: waiting, Queued: g.queued.Load(),
		Limit: g.limit.Load(), InFlight: g.inFlight.Load(),
		Admitted: g.admitted.Load(), Shed: g.shed.Load(), Completed: g.completed.Load(), TimedOut: g.expired.Load(),
		Abandoned: g.abandoned.Load(),
	}
}
