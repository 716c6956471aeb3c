package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
)

func TestGateFixedLimit(t *testing.T) {
	t.Parallel()
	g := newGate(2, time.Hour)
	g.maxWait = 0 // refuse at once, no queue
	now := time.Now()
	r1, ok1 := g.enter(now, nil)
	_, ok2 := g.enter(now, nil)
	_, ok3 := g.enter(now, nil)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admitted %v %v %v, want the third shed", ok1, ok2, ok3)
	}
	r1(true)
	r1(true) // a second release is a no-op
	if _, ok := g.enter(now, nil); !ok {
		t.Fatal("a freed slot was not reused")
	}
	s := g.stats()
	if s.Admitted != 3 || s.Shed != 1 || s.Completed != 1 || s.InFlight != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestGateQueues checks a ClientHello waits for a slot, oldest first, and
// is refused at once when the queue could not be served in time or when
// its wait runs out.
func TestGateQueues(t *testing.T) {
	t.Parallel()
	g := newGate(1, 4*time.Second) // target and longest wait 1 s: a queue of 1
	first, ok := g.enter(time.Now(), nil)
	if !ok {
		t.Fatal("first not admitted")
	}
	got := make(chan bool)
	go func() {
		r, ok := g.enter(time.Now(), nil)
		if ok {
			r(true)
		}
		got <- ok
	}()
	deadline := time.Now().Add(5 * time.Second)
	for g.stats().Waiting != 1 {
		if time.Now().After(deadline) {
			t.Fatal("second ClientHello never queued")
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := g.enter(time.Now(), nil); ok {
		t.Fatal("admitted beyond a full queue")
	}
	first(true)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the waiting ClientHello was refused though a slot came free")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting ClientHello was not woken")
	}
	s := g.stats()
	if s.Admitted != 2 || s.Queued != 1 || s.Shed != 1 || s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}

	// A wait that runs out is refused and leaves the queue.
	g = newGate(1, 4*time.Second)
	g.maxWait = 20 * time.Millisecond
	hold, _ := g.enter(time.Now(), nil)
	if _, ok := g.enter(time.Now(), nil); ok {
		t.Fatal("admitted while the only slot was held")
	}
	hold(true)
	if s := g.stats(); s.Waiting != 0 || s.Shed != 1 || s.InFlight != 0 {
		t.Fatalf("after a timed-out wait: %+v", s)
	}
}

func TestGateTimeoutFreesSlots(t *testing.T) {
	t.Parallel()
	g := newGate(1, 50*time.Millisecond)
	if _, ok := g.enter(time.Now(), nil); !ok {
		t.Fatal("not admitted")
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an abandoned handshake kept its slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g.stats().TimedOut != 1 {
		t.Fatalf("stats %+v", g.stats())
	}
}

// TestGateAdapts checks the limit follows the completion rate, never below
// the floor nor above the ceiling.
func TestGateAdapts(t *testing.T) {
	t.Parallel()
	g := newGate(0, 2*time.Second) // target 500 ms
	now := time.Now()
	if g.limit.Load() != gateFloor {
		t.Fatalf("starts at %d, want the floor %d", g.limit.Load(), gateFloor)
	}
	// 1 000 completions a second for a while: limit ~ 1000 * 0.5 = 500.
	for i := 0; i < 20; i++ {
		for j := 0; j < 250; j++ {
			if r, ok := g.enter(now, nil); ok {
				r(true)
			}
		}
		now = now.Add(gateWindow)
	}
	g.adapt(now)
	if l := g.limit.Load(); l < 400 || l > 600 {
		t.Fatalf("limit %d after 1000/s, want about 500", l)
	}
	// Nothing completes: back to the floor, not below.
	for i := 0; i < 10; i++ {
		now = now.Add(gateWindow)
		g.adapt(now)
	}
	if l := g.limit.Load(); l != gateFloor {
		t.Fatalf("limit %d with no completions, want the floor", l)
	}
	// An absurd rate stops at the ceiling.
	g.completed.Add(1_000_000)
	now = now.Add(gateWindow)
	g.adapt(now)
	if l := g.limit.Load(); l != gateCeiling {
		t.Fatalf("limit %d, want the ceiling %d", l, gateCeiling)
	}
}

// TestGateBurst connects 150 clients at once through a broker that admits
// 4 handshakes at a time: it sheds, and every client gets in on retry.
func TestGateBurst(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.HandshakeLimit = 4
	b, _ := startBroker(t, cfg)
	kp := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	const clients = 150
	var wg sync.WaitGroup
	conns := make(chan *nats.Conn, clients)
	failed := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for {
				nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, kp))
				if err == nil {
					conns <- nc
					return
				}
				if time.Now().After(deadline) {
					failed <- err
					return
				}
				time.Sleep(time.Duration(50+len(conns)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(conns)
	close(failed)
	n := 0
	for nc := range conns {
		n++
		nc.Close()
	}
	for err := range failed {
		t.Errorf("client never admitted: %v", err)
	}
	s := b.Handshakes()
	if n != clients || s.Shed == 0 || s.Completed < clients {
		t.Fatalf("%d connected; gate %+v: want all in, some shed", n, s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Handshakes().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slots still held after the burst: %+v", b.Handshakes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
