package federation

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/fleet"
)

// side is one network: the federation or the member collective.
type side struct {
	name   string // connected_to label: federation or collective
	loc    *locator
	links  []*link
	ingest *path // the direction this side's subscriptions feed

	up     chan struct{} // closed once any link of the side connected
	upOnce sync.Once
}

func newSide(b *Broker, name string, loc *locator, conns int) *side {
	s := &side{name: name, loc: loc, up: make(chan struct{})}
	for i := 0; i < conns; i++ {
		s.links = append(s.links, &link{b: b, side: s, index: i, name: "choria_federation_" + name + ":" + strconv.Itoa(i)})
	}
	return s
}

// pick is the connection worker w publishes on: its own, or the next
// connected one while its own reconnects.
func (s *side) pick(w int) (int, *nats.Conn) {
	n := len(s.links)
	for i := 0; i < n; i++ {
		k := (w + i) % n
		if nc := s.links[k].conn.Load(); nc != nil && nc.IsConnected() {
			return k, nc
		}
	}
	k := w % n
	return k, s.links[k].conn.Load() // may buffer a little while reconnecting, or be nil
}

// link is one NATS connection of a side. It carries the side's ingest
// queue subscription and publishes the other direction's egest. nats.go
// reconnects it and re-subscribes; should nats.go ever give up (a
// closed connection), the link dials again from scratch.
type link struct {
	b     *Broker
	side  *side
	index int
	name  string // NATS client name

	conn atomic.Pointer[nats.Conn]
	url  atomic.Pointer[string] // connected broker, for seen-by hops

	mu      sync.Mutex
	sub     *nats.Subscription
	dropped int // of sub, already counted as SlowConsumer
}

// connectedURL is the broker this link is on, as recorded in hops.
func (l *link) connectedURL() string {
	if u := l.url.Load(); u != nil {
		return *u
	}
	return ""
}

func (l *link) noteURL(nc *nats.Conn) {
	u := fleet.ConnectedURL(nc)
	l.url.Store(&u)
}

// run keeps the link connected and subscribed until ctx ends. Its
// subscription waits until the other side can publish, so that nothing
// is taken in that cannot go out.
func (l *link) run(ctx context.Context, other *side) {
	log := l.b.log.With("side", l.side.name, "connection", l.index)
	first := true
	for ctx.Err() == nil {
		closed := make(chan struct{})
		nc, err := l.dial(ctx, closed)
		if err != nil {
			return // ctx ended
		}
		l.conn.Store(nc) // from here the shutdown closes it
		l.noteURL(nc)
		if ctx.Err() != nil {
			return
		}
		log.Info("connected", "url", l.connectedURL())
		l.side.upOnce.Do(func() { close(l.side.up) })
		select {
		case <-other.up:
		case <-ctx.Done():
			return
		}
		if err := l.subscribe(nc); err != nil {
			log.Error("cannot subscribe; reconnecting", "error", err)
			nc.Close()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		} else if first {
			first = false
			l.b.linkUp()
		}
		select {
		case <-ctx.Done():
			return
		case <-closed:
			log.Warn("connection closed; dialling again")
		}
	}
}

// dial connects with go-choria's options, retrying forever until ctx ends.
func (l *link) dial(ctx context.Context, closed chan struct{}) (*nats.Conn, error) {
	m := l.b.metrics
	opts := fleet.ConnOptions(l.name, l.b.creds.config,
		nats.IgnoreAuthErrorAbort(), // a revoked-then-fixed certificate must not end reconnects
		nats.FlusherTimeout(10*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				l.b.log.Warn("disconnected", "side", l.side.name, "connection", l.index, "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.reconnections.Inc()
			l.noteURL(nc)
			l.b.log.Info("reconnected", "side", l.side.name, "connection", l.index, "url", l.connectedURL())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			m.closed.Inc()
			close(closed)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			m.connErrors.Inc()
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
				l.countSlow(sub)
				return
			}
			if errors.Is(err, nats.ErrPermissionViolation) {
				l.b.log.Error("the "+l.side.name+" network refuses this broker's subscribe or publish; its brokers must give this certificate the federation role (plugin.choria.network.federation_brokers)", "connection", l.index, "error", err)
				return
			}
			l.b.log.Warn("NATS error", "side", l.side.name, "connection", l.index, "error", err)
		}),
	)
	for {
		servers, err := l.side.loc.servers(ctx)
		if err == nil {
			start := time.Now()
			m.connectAttempts.Inc()
			nc, err := fleet.ConnectRetry(ctx, servers, opts)
			if err == nil {
				m.connectTime.Observe(time.Since(start).Seconds())
			}
			return nc, err
		}
		l.b.log.Error("cannot find brokers; retrying", "side", l.side.name, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (l *link) subscribe(nc *nats.Conn) error {
	p := l.side.ingest
	sub, err := nc.QueueSubscribe(p.subject, p.group, p.handler(l.index))
	if err != nil {
		return err
	}
	// The handler never blocks, so this buffer only absorbs scheduling
	// hiccups; what overflows it is counted as SlowConsumer.
	if err := sub.SetPendingLimits(65536, 64<<20); err != nil {
		return err
	}
	l.mu.Lock()
	l.sub, l.dropped = sub, 0
	l.mu.Unlock()
	// The server has the subscription once it answers a ping; a slow
	// answer is no reason to give the subscription up.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		l.b.log.Warn("subscription not confirmed yet", "side", l.side.name, "connection", l.index, "error", err)
	}
	return nil
}

// countSlow adds what nats.go dropped for a subscription since last asked.
func (l *link) countSlow(sub *nats.Subscription) {
	n, err := sub.Dropped()
	if err != nil {
		return
	}
	l.mu.Lock()
	if sub != l.sub {
		l.mu.Unlock()
		return
	}
	d := n - l.dropped
	l.dropped = n
	l.mu.Unlock()
	if d > 0 {
		p := l.side.ingest
		p.ingest[l.index].errors.Add(float64(d))
		p.drops[SlowConsumer].Add(float64(d))
	}
}

// drain removes the subscription's interest and lets nats.go deliver what
// the server had already sent.
func (l *link) drain() {
	l.mu.Lock()
	sub := l.sub
	l.mu.Unlock()
	if sub != nil {
		_ = sub.Drain()
	}
}

func (l *link) waitDrained(deadline time.Time) {
	l.mu.Lock()
	sub := l.sub
	l.mu.Unlock()
	for sub != nil && sub.IsValid() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sub != nil {
		l.countSlow(sub)
	}
}
