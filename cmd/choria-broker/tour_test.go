package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil"
)

// runCLI runs choria-broker with args in this process until ctx ends.
func runCLI(ctx context.Context, args ...string) (*testutil.Buffer, chan error) {
	out := &testutil.Buffer{}
	cmd := rootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	return out, done
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d not open within 30s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestThreeTerminalTour runs the README's tour in one process: a dev
// broker, 1 000 emulated nodes, and a ping that expects all of them.
func TestThreeTerminalTour(t *testing.T) {
	if testing.Short() {
		t.Skip("1 000 TLS connections")
	}
	dir := t.TempDir()
	port, stats := testutil.FreePort(t), testutil.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan error
	defer func() {
		cancel()
		for _, d := range dones {
			select {
			case <-d:
			case <-time.After(30 * time.Second):
				t.Error("a command did not stop within 30s")
			}
		}
	}()

	_, brokerDone := runCLI(ctx, "dev", "--dir", dir, "--client-port", strconv.Itoa(port), "--stats-port", strconv.Itoa(stats))
	dones = append(dones, brokerDone)
	waitPort(t, port)

	emuOut, emuDone := runCLI(ctx, "emulate", "--dev", "--dev-dir", dir, "--nodes", "1000")
	dones = append(dones, emuDone)
	waitFor(t, emuOut, "all 1000 nodes connected")

	pingOut, pingDone := runCLI(context.Background(), "ping", "--dev", "--dev-dir", dir, "--expect", "1000", "--timeout", "20s")
	select {
	case err := <-pingDone:
		if err != nil {
			t.Fatalf("ping: %v\n%s", err, pingOut)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ping did not finish within 60s")
	}
	if !strings.Contains(pingOut.String(), "1000 replies") || strings.Count(pingOut.String(), "time=") != 1000 {
		t.Fatalf("ping output:\n%s", pingOut)
	}
	// A ping expecting more than exist exits non-zero and says so.
	short, shortDone := runCLI(context.Background(), "ping", "--dev", "--dev-dir", dir, "--expect", "1001", "--timeout", "3s", "--silent")
	if err := <-shortDone; err == nil || !strings.Contains(err.Error(), "1000 of 1001") {
		t.Fatalf("want a shortfall error, got %v\n%s", err, short)
	}
}
