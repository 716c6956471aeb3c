package fleet

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestNodeDialerClosesAbandonedSocket checks a node holds one socket: when
// nats.go dials again after a failed attempt, the socket it left behind is
// closed, and dials and refused dials are counted.
func TestNodeDialerClosesAbandonedSocket(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var dials atomic.Uint64
	failed := map[string]*atomic.Uint64{}
	for _, c := range dialCauses {
		failed[c] = new(atomic.Uint64)
	}
	d := &nodeDialer{d: net.Dialer{Timeout: time.Second}, dials: &dials, failed: failed}

	first, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	serverSide := <-accepted
	defer serverSide.Close()
	second, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	(<-accepted).Close()

	// The broker's side of the first connection sees it closed.
	_ = serverSide.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := serverSide.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("first socket still open after the node dialled again: read gave %v", err)
	}

	// A dial to a port nobody listens on counts as refused.
	addr := l.Addr().String()
	l.Close()
	if _, err := d.Dial("tcp", addr); err == nil {
		t.Fatal("dialled a closed listener")
	}
	if dials.Load() != 3 || failed[CauseRefused].Load() != 1 {
		t.Fatalf("dials %d, refused %d; want 3 and 1", dials.Load(), failed[CauseRefused].Load())
	}
}

// TestGoChoriaCurves: the fleet tools offer the key exchanges go-choria's
// servers and clients offer, never Go's post-quantum hybrid default,
// unless asked to.
func TestGoChoriaCurves(t *testing.T) {
	t.Parallel()
	offered := func(c *tls.Config) []tls.CurveID {
		t.Helper()
		got := make(chan []tls.CurveID, 1)
		srv, cli := net.Pipe()
		defer srv.Close()
		defer cli.Close()
		go func() {
			_ = tls.Server(srv, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				got <- h.SupportedCurves
				return nil, errors.New("enough")
			}}).Handshake()
		}()
		c.InsecureSkipVerify = true
		_ = tls.Client(cli, c).Handshake()
		select {
		case g := <-got:
			return g
		case <-time.After(5 * time.Second):
			t.Fatal("no ClientHello")
			return nil
		}
	}
	if got := offered(TLSConfig(nil, nil)); !slices.Equal(got, []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}) {
		t.Fatalf("offered %v, want go-choria's X25519, P-256, P-384, P-521", got)
	}
	goDefaults := TLSConfig(nil, nil)
	goDefaults.CurvePreferences = nil
	if got := offered(goDefaults); !slices.Contains(got, tls.X25519MLKEM768) {
		t.Fatalf("with Go's defaults offered %v, want X25519MLKEM768 among them", got)
	}
}
