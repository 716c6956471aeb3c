package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// clusterMember is one choria-broker process of a test cluster.
type clusterMember struct {
	conf, url string
	stats     int
	kill      func()
	out       *testutil.Buffer
}

// startMember runs the real broker with conf and waits until it is ready.
func startMember(t *testing.T, m *clusterMember) {
	t.Helper()
	cmd, out := command(t, "run", "--config", m.conf)
	m.kill = start(t, cmd).kill // SIGKILL: no flush, no clean shutdown
	m.out = out
	waitFor(t, out, "broker ready")
}

// streamLastSeq reads a stream's last sequence from a member's /jsz.
func streamLastSeq(statsPort int, stream string) (uint64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", statsPort))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					LastSeq uint64 `json:"last_seq"`
				} `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return 0, err
	}
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State.LastSeq, nil
			}
		}
	}
	return 0, fmt.Errorf("no stream %s", stream)
}

// TestStreamsClusterSurviveKill runs a 3-broker cluster of real processes
// with an R3 KV bucket and SIGKILLs the member the writing client is
// connected to in the middle of 10 000 acknowledged writes: the client
// moves to another member, the two left keep acknowledging writes, every
// acknowledged write reads back afterwards, and the killed member, started
// again on its store, catches up.
func TestStreamsClusterSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three broker processes and 10 000 replicated writes")
	}
	t.Parallel()
	dir := t.TempDir()
	env, err := devenv.Prepare(dir, devenv.Options{ClientPort: testutil.FreePort(t), StatsOff: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	var peers []string
	peerPorts := make([]int, n)
	for i := range n {
		peerPorts[i] = testutil.FreePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", peerPorts[i]))
	}
	members := make([]*clusterMember, n)
	var urls []string
	for i := range n {
		name := fmt.Sprintf("broker%d.example.net", i+1)
		kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if err := kp.Save(cert, key); err != nil {
			t.Fatal(err)
		}
		port, stats := testutil.FreePort(t), testutil.FreePort(t)
		m := &clusterMember{conf: filepath.Join(dir, name+".conf"), url: fmt.Sprintf("nats://127.0.0.1:%d", port), stats: stats}
		text := fmt.Sprintf(`identity = %s
loglevel = info
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
plugin.choria.network.public_url = 127.0.0.1:%d
plugin.choria.stats_address = 127.0.0.1
plugin.choria.stats_port = %d
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.security.file.crl = %s
plugin.choria.network.peers = %s
plugin.choria.network.peer_port = %d
plugin.choria.network.peer_password = Vrph54FBcIvdM
plugin.choria.network.stream.store = %s
`, name, port, port, stats, cert, key, env.PKI.CAFile(), env.PKI.CRLFile(), strings.Join(peers, ","), peerPorts[i], filepath.Join(dir, name+"-store"))
		if err := os.WriteFile(m.conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		members[i], urls = m, append(urls, m.url)
	}
	for _, m := range members {
		startMember(t, m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	tc := devbroker.IssueTLS(t, env, "admin.privileged.mcollective")
	// every member's URL, as a Choria client's middleware_hosts: on a
	// member's loss the client moves to another
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Secure(tc), nats.Timeout(3*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.DontRandomize())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var kv jetstream.KeyValue
	for { // the meta leader is elected a moment after the routes are up
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = js.CreateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "DATA", Replicas: 3})
		ccancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create an R3 bucket: %v\n%s", err, members[0].out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// writers put k0..k9999 once each, retrying a write until acknowledged;
	// an acknowledged write's revision is recorded
	const total, writers = 10000, 4
	var mu sync.Mutex
	acked := map[string]uint64{}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				key := fmt.Sprintf("k%d", i)
				for {
					pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
					rev, err := kv.Put(pctx, key, []byte(fmt.Sprint(i)))
					pcancel()
					if err == nil {
						mu.Lock()
						acked[key] = rev
						mu.Unlock()
						break
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("put %s: %v", key, err)
						return
					}
					time.Sleep(50 * time.Millisecond) // a new stream leader is being elected
				}
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitCount := func(want int) {
		t.Helper()
		for count() < want {
			if ctx.Err() != nil {
				t.Fatalf("only %d of %d writes acknowledged", count(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	waitCount(2000)
	// kill -9 the member the client is on
	victim := -1
	for i, m := range members {
		if nc.ConnectedUrl() == m.url {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("client on %q, not a member", nc.ConnectedUrl())
	}
	members[victim].kill()
	atKill := count()

	// the two left keep acknowledging writes while it is down
	waitCount(atKill + 3000)
	if nc.ConnectedUrl() == members[victim].url {
		t.Fatal("client still on the killed member")
	}
	whileDown := count() - atKill
	startMember(t, members[victim])
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if count() != total {
		t.Fatalf("%d writes acknowledged, want %d", count(), total)
	}

	// every acknowledged write reads back at its revision
	for key, rev := range acked {
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		e, err := kv.Get(gctx, key)
		gcancel()
		if err != nil || e.Revision() != rev || string(e.Value()) != strings.TrimPrefix(key, "k") {
			t.Fatalf("acknowledged write %s (revision %d) lost: %v %v", key, rev, e, err)
		}
	}

	// the restarted member's replica holds the last acknowledged write
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	for {
		got, err := streamLastSeq(members[victim].stats, "KV_DATA")
		if err == nil && got == last {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("restarted member has KV_DATA up to %d (%v), want %d\n%s", got, err, last, members[victim].out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("killed broker%d after %d acknowledged writes; %d acknowledged while it was down; last sequence %d on the rejoined member",
		victim+1, atKill, whileDown, last)
}
