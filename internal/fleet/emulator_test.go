package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func TestCheckIdentityPattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"web-%d.example.net", true},
		{"node%05d", true},
		{"%d", true},
		{"100%%-%d", true},
		{"alpha", false},
		{"alpha-%d-%d", false},
		{"alpha-%s", false},
		{"alpha-%d-%s", false},
		{"alpha-%v", false},
		{"alpha %d", false},
		{"alpha.%d.", false},
		{".%d", false},
		{"a..%d", false},
		{"a>%d", false},
		{"a*%d", false},
		{"%", false},
		{"a-%d%", false},
	} {
		err := CheckIdentityPattern(tc.pattern)
		if (err == nil) != tc.ok {
			t.Errorf("%q: got %v, want ok=%v", tc.pattern, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--identity") {
			t.Errorf("%q: %v does not name the flag", tc.pattern, err)
		}
	}
}

// TestConnectedNeverNegative: a node whose connection closes before it
// finished subscribing was counted out without ever being counted in,
// and the fleet's connected total went below zero.
func TestConnectedNeverNegative(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	db := devbroker.Start(t, env)
	c := credentials(t, env.ServerConf, true)
	e, err := NewEmulator(EmulatorOptions{Servers: []string{db.URL()}, Nodes: 3, Certs: c.NodeCerts, CA: c.CA, Trust: c.Trust})
	if err != nil {
		t.Fatal(err)
	}
	// Names no subject can hold: subscribing fails and the connection is
	// closed, as with the unchecked patterns of earlier versions.
	for _, n := range e.nodes {
		n.identity += " broken"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n := e.Stats().Connected; n < 0 || n > 3 {
			cancel()
			t.Fatalf("connected %d of 3", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("emulator did not stop")
	}
	if n := e.Stats().Connected; n != 0 {
		t.Fatalf("connected %d after stopping", n)
	}
}

// TestOwnCertificatesOrRefused: with the dev CA each node connects with a
// certificate of its own name and may read its direct subject; sharing
// the ssldir's certificates, the broker's node role refuses that, and the
// emulator counts the refusals instead of printing one line per node.
func TestOwnCertificatesOrRefused(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	devbroker.Start(t, env)
	own := startFleet(t, env, 4, nil)
	res := ping(t, env, func(o *PingOptions) { o.Expect = 4; o.RPC = true })
	if len(res.RPCMissing) != 0 || own.Stats().Refused != 0 {
		t.Fatalf("own certificates: rpc missing %v, refused %d", res.RPCMissing, own.Stats().Refused)
	}
	shared := startFleet(t, env, 3, func(o *EmulatorOptions) { o.IssueCA = nil; o.IdentityPattern = "shared-%d.example.net" })
	waitUntil(t, 10*time.Second, func() bool { return shared.Stats().Refused >= 3 }, "the direct subjects refused")
}
