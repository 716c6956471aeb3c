package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
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

// DNS runs dnsmasq on a free loopback port as the only DNS server the
// returned resolver asks: it answers with records, and NXDOMAIN for every
// other name (so a resolv.conf search list cannot turn a missing record
// into a refusal). It stops when the test ends.
func DNS(t testing.TB, zone string, records ...SRV) *net.Resolver {
	t.Helper()
	bin := RequireProgram(t, "dnsmasq")
	var last string
	for range 3 { // the free port may be taken before dnsmasq binds it
		r, out, ok := startDNS(t, bin, zone, records)
		if ok {
			return r
		}
		last = out
	}
	t.Fatalf("dnsmasq did not start:\n%s", last)
	return nil
}

// startDNS starts dnsmasq once; ok is false when it exited before it
// answered, with its output.
func startDNS(t testing.TB, bin, zone string, records []SRV) (r *net.Resolver, output string, ok bool) {
	t.Helper()
	port := FreePort(t)
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", fmt.Sprintf("--port=%d", port), "--pid-file=",
		"--local=/#/", "--log-queries", "--log-facility=-"}
	for _, rec := range records {
		args = append(args, fmt.Sprintf("--srv-host=%s,%s,%d,%d,%d", rec.Name, rec.Target, rec.Port, rec.Priority, rec.Weight))
	}
	var out Buffer
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
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r = Resolver(addr)
	// Ready once it answers: NXDOMAIN for a name it has no record of.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.LookupTXT(context.Background(), "ready."+zone+".")
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return r, "", true
		}
		select {
		case <-done:
			return nil, out.String(), false
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
