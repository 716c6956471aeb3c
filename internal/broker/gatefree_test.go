package broker

import (
	"bufio"
	"crypto/tls"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestGateSweepFreesAbandoned checks sweep frees exactly the slots, held
// long enough, whose client has gone, and that their late release does not
// free a second slot.
func TestGateSweepFreesAbandoned(t *testing.T) {
	t.Parallel()
	g := newGate(5, time.Hour)
	g.maxWait = 0
	now := time.Now()
	var alive atomic.Bool
	alive.Store(true)
	gone := func() bool { return true }
	stays := func() bool { return !alive.Load() }
	goneRel, _ := g.enter(now, gone)
	if _, ok := g.enter(now, stays); !ok {
		t.Fatal("not admitted")
	}
	if _, ok := g.enter(now, nil); !ok { // not watchable: its timer only
		t.Fatal("not admitted")
	}
	young, _ := g.enter(now.Add(time.Second), gone)
	if young == nil {
		t.Fatal("not admitted")
	}
	if n := g.sweep(now.Add(time.Second)); n != 1 {
		t.Fatalf("sweep freed %d slots, want the one whose client went", n)
	}
	goneRel(true) // late: must not free another slot
	s := g.stats()
	if s.InFlight != 3 || s.Abandoned != 1 || s.TimedOut != 1 || s.Completed != 0 {
		t.Fatalf("after sweep: %+v", s)
	}
	if n := g.sweep(now.Add(time.Second)); n != 0 {
		t.Fatalf("second sweep freed %d", n)
	}
	// Once old enough, the young one goes too, and the live one when its
	// client leaves.
	alive.Store(false)
	if n := g.sweep(now.Add(2 * time.Second)); n != 2 {
		t.Fatalf("sweep freed %d slots, want 2", n)
	}
	if s := g.stats(); s.InFlight != 1 || s.Abandoned != 3 || len(g.held) != 0 {
		t.Fatalf("after second sweep: %+v, %d watched", s, len(g.held))
	}
}

// closeAfterWrite closes its connection as soon as the first write, the
// ClientHello, is sent: a client that opens handshakes and walks away.
type closeAfterWrite struct{ net.Conn }

func (c closeAfterWrite) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.Conn.Close()
	return n, err
}

// TestGateAbandonedHellosDoNotStarve fills every handshake slot with
// ClientHellos whose clients hang up at once; with a 30 s TLS timeout a
// real node must still get in within seconds.
func TestGateAbandonedHellosDoNotStarve(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux TCP_INFO")
	}
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.HandshakeLimit = 4
	cfg.Network.TLSTimeout = 30 * time.Second
	b, logs := startBroker(t, cfg)
	for i := 0; i < 4; i++ {
		conn, err := net.DialTimeout("tcp", b.ClientAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil { // INFO
			t.Fatal(err)
		}
		if err := tls.Client(closeAfterWrite{conn}, clientTLS(p.ca.Cert, nil)).Handshake(); err == nil {
			t.Fatal("handshake over a closed connection succeeded")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Handshakes().Admitted < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned ClientHellos never took slots: %+v", b.Handshakes())
		}
		time.Sleep(5 * time.Millisecond)
	}

	kp := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	deadline = time.Now().Add(5 * time.Second)
	for {
		nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, kp))
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a real node was kept out by abandoned handshakes: %v; gate %+v\n%s", err, b.Handshakes(), logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for s := b.Handshakes(); s.Abandoned != 4 || s.InFlight != 0; s = b.Handshakes() {
		if time.Now().After(deadline) {
			t.Fatalf("abandoned slots not all freed: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
