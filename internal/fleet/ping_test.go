package fleet

import (
	"context"
	"github.com/choria-broker/choria-broker/internal/config"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestPingExpectReachesLateNodes: nodes that connect after the request
// left (as in a reconnect storm) still answer a ping that expects them,
// because the request is sent again while replies have stopped.
func TestPingExpectReachesLateNodes(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	devbroker.Start(t, env)
	early := startFleet(t, env, 5, func(o *EmulatorOptions) { o.IdentityPattern = "early-%d.example.net" })
	type result struct {
		res *PingResult
		err error
	}
	got := make(chan result, 1)
	c := credentials(t, env.ClientConf, false)
	go func() {
		res, err := Ping(context.Background(), PingOptions{Servers: c.Servers, Cert: c.Cert, CA: c.CA, Timeout: 30 * time.Second, Expect: 10})
		got <- result{res, err}
	}()
	// Late nodes join once the first request has been answered.
	time.Sleep(1500 * time.Millisecond)
	late := startFleet(t, env, 5, func(o *EmulatorOptions) { o.IdentityPattern = "late-%d.example.net" })
	var r result
	select {
	case r = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("ping did not finish")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m := r.res.Missing(append(early.Identities(), late.Identities()...)); len(m) > 0 {
		t.Fatalf("missing %v after %d sends", m, r.res.Sends)
	}
	if r.res.Sends < 2 {
		t.Fatalf("sent %d times; the late nodes can only have answered a repeat", r.res.Sends)
	}
}

// TestFederationCollectivesEnvironment: CHORIA_FED_COLLECTIVE comes before
// plugin.choria.federation.collectives, as in go-choria. Not parallel: it
// sets the environment.
func TestFederationCollectivesEnvironment(t *testing.T) {
	cfg := config.Default()
	cfg.Federation.Collectives = []string{"alpha", "beta"}
	if got := federationCollectives(cfg); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("from the setting: %v", got)
	}
	t.Setenv("CHORIA_FED_COLLECTIVE", " gamma, ,delta ")
	if got := federationCollectives(cfg); !slices.Equal(got, []string{"gamma", "delta"}) {
		t.Fatalf("from the environment: %v", got)
	}
}

// TestPingWithNodeCertificateSaysRefused: the broker refuses a node
// certificate's request; ping says so instead of "0 replies".
func TestPingWithNodeCertificateSaysRefused(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	devbroker.Start(t, env)
	startFleet(t, env, 2, nil)
	c := credentials(t, env.ClientConf, false)
	node := devbroker.KeyPair(t, env, env.PKI.Nodes[0])
	_, err := Ping(context.Background(), PingOptions{Servers: c.Servers, Cert: node, CA: c.CA, Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "does not have the client role") || !strings.Contains(err.Error(), "permissions violation") {
		t.Fatalf("ping with a node certificate: %v; want the broker's refusal explained", err)
	}
}
