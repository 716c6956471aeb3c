package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// SRV is one SRV record a test's DNS server answers with.
type SRV struct {
	Name             string // _service._proto.domain
	Target           string
	Port             int
	Priority, Weight int
}

// DNS runs dnsmasq on a free loopback port as the authority for zone:
// it answers with records and says NXDOMAIN for every other name in the
// zone, as a real zone does. It returns a resolver that asks only it, and
// stops when the test ends.
func DNS(t testing.TB, zone string, records ...SRV) *net.Resolver {
	t.Helper()
	bin := RequireProgram(t, "dnsmasq")
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + port, "--pid-file=",
		"--local=/" + zone + "/", "--log-queries", "--log-facility=-"}
	for _, r := range records {
		args = append(args, fmt.Sprintf("--srv-host=%s,%s,%d,%d,%d", r.Name, r.Target, r.Port, r.Priority, r.Weight))
	}
	var out lockedBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("dnsmasq did not stop")
		}
		if t.Failed() {
			t.Logf("dnsmasq:\n%s", out.String())
		}
	})
	r := Resolver(addr)
	// Ready once it answers: NXDOMAIN for a name of the zone it has no record of.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.LookupTXT(context.Background(), "ready."+zone)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return r
		}
		select {
		case <-done:
			t.Fatalf("dnsmasq exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not answer on %s within 10s (%v):\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Resolver asks only the DNS server at addr (host:port).
func Resolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
