package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// runBroker starts a broker and returns a stop function that waits for
// it; stopping twice is fine, and the test's end stops it too.
func runBroker(t *testing.T, cfg *config.Config) (*Broker, *syncBuffer, func()) {
	t.Helper()
	logs := &syncBuffer{}
	b, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker %s: %v", cfg.Identity, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("broker %s did not stop within 20s", cfg.Identity)
		}
	}
	t.Cleanup(stop)
	select {
	case <-b.Ready():
	case err := <-done:
		stopped = true
		t.Fatalf("broker did not start: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("broker not ready within 20s\n%s", logs)
	}
	return b, logs, stop
}

// adminTLS is a privileged client certificate: only privileged users may
// create streams (roles_streams_test.go has the other roles).
func (p *testPKI) adminTLS(t testing.TB) *tls.Config {
	return clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}))
}

func streamsJS(t testing.TB, url string, tc *tls.Config, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Secure(tc), nats.Timeout(3 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

var standardNames = []string{"CHORIA_EVENTS", "CHORIA_MACHINE", "CHORIA_STREAM_ADVISORIES", "CHORIA_EXECUTOR", "KV_CHORIA_LEADER_ELECTION"}

// waitStreams waits for the named streams and returns their configs.
func waitStreams(t testing.TB, js jetstream.JetStream, names []string, limit time.Duration, logs fmt.Stringer) map[string]jetstream.StreamConfig {
	t.Helper()
	out := map[string]jetstream.StreamConfig{}
	deadline := time.Now().Add(limit)
	for _, n := range names {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := js.Stream(ctx, n)
			cancel()
			if err == nil {
				out[n] = s.CachedInfo().Config
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s not there within %s: %v\n%s", n, limit, err, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}

func streamsConfig(p *testPKI, store string) *config.Config {
	cfg := p.config()
	cfg.Network.Stream.Store = store
	cfg.Network.Stream.LeaderElectionTTL = 2 * time.Second
	return cfg
}

// The five standard streams exist with go-choria's settings; KV, a
// governor and a leader election work for a client.
func TestStreamsSingleBroker(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs, _ := runBroker(t, streamsConfig(p, t.TempDir()))
	_, js := streamsJS(t, b.ClientURL(), p.adminTLS(t))
	got := waitStreams(t, js, standardNames, 20*time.Second, logs)

	day, week := 24*time.Hour, 7*24*time.Hour
	for name, want := range map[string]struct {
		subject string
		age     time.Duration
	}{
		"CHORIA_EVENTS": {"choria.lifecycle.>", day}, "CHORIA_MACHINE": {"choria.machine.>", day},
		"CHORIA_STREAM_ADVISORIES": {"$JS.EVENT.ADVISORY.>", week}, "CHORIA_EXECUTOR": {"choria.submission.in.choria.executor.>", day},
		"KV_CHORIA_LEADER_ELECTION": {"$KV.CHORIA_LEADER_ELECTION.>", 2 * time.Second},
	} {
		c := got[name]
		if !slices.Equal(c.Subjects, []string{want.subject}) || c.MaxAge != want.age || c.Storage != jetstream.FileStorage ||
			c.Replicas != 1 || c.Retention != jetstream.LimitsPolicy || c.MaxMsgs != -1 || c.MaxBytes != -1 || c.MaxConsumers != -1 {
			t.Errorf("%s: %+v", name, c)
		}
		if name != "KV_CHORIA_LEADER_ELECTION" && (c.Discard != jetstream.DiscardOld || c.MaxMsgSize != -1) {
			t.Errorf("%s: discard %v, max msg size %d", name, c.Discard, c.MaxMsgSize)
		}
	}
	if c := got["CHORIA_EXECUTOR"]; c.SubjectTransform == nil || c.SubjectTransform.Destination != "choria.executor.>" || !c.AllowDirect || c.Description != "Choria Executor Events" {
		t.Errorf("executor: %+v", c)
	}
	if c := got["KV_CHORIA_LEADER_ELECTION"]; c.Discard != jetstream.DiscardNew || !c.DenyDelete || !c.AllowRollup || !c.AllowDirect ||
		c.MaxMsgsPerSubject != 1 || c.MaxMsgSize != 1024 || c.Description != "Choria Leader Election Bucket" {
		t.Errorf("election: %+v", c)
	}
	if len(b.StreamsStatus().Pending) != 0 || b.StreamsStatus().Error != "" {
		t.Errorf("status %+v", b.StreamsStatus())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// a KV bucket: create, put, get, watch
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CONFIG", History: 5})
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "app.>")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := <-w.Updates(); e != nil {
		t.Fatalf("empty bucket: want the end-of-initial marker, got %v", e)
	}
	if _, err := kv.Put(ctx, "app.version", []byte("1.2.3")); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "app.version"); err != nil || string(e.Value()) != "1.2.3" {
		t.Fatalf("get: %v %v", e, err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "app.version" || string(e.Value()) != "1.2.3" {
			t.Fatalf("watch got %v", e)
		}
	case <-ctx.Done():
		t.Fatal("watch saw nothing")
	}

	// a governor: capacity 2, discard new; a third entry waits for a slot
	gov, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GOVERNOR_DEPLOY", Subjects: []string{"mcollective.governor.DEPLOY"},
		MaxMsgs: 2, Discard: jetstream.DiscardNew, MaxAge: time.Minute, Storage: jetstream.FileStorage, Description: "Concurrency Governor DEPLOY"})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 2 {
		a, err := js.Publish(ctx, "mcollective.governor.DEPLOY", []byte(fmt.Sprintf("node%d", i)))
		if err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
		seqs = append(seqs, a.Sequence)
	}
	if _, err := js.Publish(ctx, "mcollective.governor.DEPLOY", []byte("node2")); err == nil || !strings.Contains(err.Error(), "maximum messages exceeded") {
		t.Fatalf("third entry: want refused, got %v", err)
	}
	if err := gov.DeleteMsg(ctx, seqs[0]); err != nil { // node0 leaves
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "mcollective.governor.DEPLOY", []byte("node2")); err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}

	// a leader election among three contenders in KV_CHORIA_LEADER_ELECTION
	elect, err := js.KeyValue(ctx, "CHORIA_LEADER_ELECTION")
	if err != nil {
		t.Fatal(err)
	}
	var winners []string
	var rev uint64
	for _, who := range []string{"c1", "c2", "c3"} {
		if r, err := elect.Create(ctx, "tally", []byte(who)); err == nil {
			winners, rev = append(winners, who), r
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			t.Fatalf("%s: %v", who, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("winners %v, want exactly one", winners)
	}
	// the leader keeps its lease by updating on its revision
	if rev, err = elect.Update(ctx, "tally", []byte(winners[0]), rev); err != nil {
		t.Fatal(err)
	}
	// it stops updating; once the TTL has passed another contender wins
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := elect.Create(ctx, "tally", []byte("c2"))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) || time.Now().After(deadline) {
			t.Fatalf("failover: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if e, err := elect.Get(ctx, "tally"); err != nil || string(e.Value()) != "c2" || e.Revision() <= rev {
		t.Fatalf("after failover: %v %v", e, err)
	}
}

// An operator's change to a field we do not manage survives a restart;
// a managed one is set back and logged old → new.
func TestStreamsKeepOperatorChanges(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := streamsConfig(p, t.TempDir())
	b, logs, stop := runBroker(t, cfg)
	tc := p.adminTLS(t)
	nc, js := streamsJS(t, b.ClientURL(), tc)
	c := waitStreams(t, js, []string{"CHORIA_EVENTS"}, 20*time.Second, logs)["CHORIA_EVENTS"]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.MaxBytes, c.MaxAge = 1<<20, time.Hour
	if _, err := js.UpdateStream(ctx, c); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	stop()

	b, logs, _ = runBroker(t, cfg)
	_, js = streamsJS(t, b.ClientURL(), tc)
	deadline := time.Now().Add(20 * time.Second)
	for len(logs.lines("set back", "CHORIA_EVENTS")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no set-back logged\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l := logs.lines("set back", "CHORIA_EVENTS"); len(l) != 1 || !strings.Contains(l[0], "MaxAge: 1h0m0s → 24h0m0s") || !strings.Contains(l[0], "plugin.choria.network.stream.event_retention") {
		t.Errorf("log: %q", l)
	}
	got := waitStreams(t, js, []string{"CHORIA_EVENTS"}, 5*time.Second, logs)["CHORIA_EVENTS"]
	if got.MaxAge != 24*time.Hour || got.MaxBytes != 1<<20 {
		t.Errorf("after restart: max age %s, max bytes %d", got.MaxAge, got.MaxBytes)
	}
}

// An unwritable store leaves Streams off with the setting and path named;
// the broker serves the fleet.
func TestStreamsUnwritableStore(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(file, "streams")
	b, logs, _ := runBroker(t, streamsConfig(p, store))
	if l := logs.lines("level=ERROR", "plugin.choria.network.stream.store = "+store, "Choria Streams is OFF"); len(l) != 1 {
		t.Errorf("want one error naming the setting and path:\n%s", logs)
	}
	if st := b.StreamsStatus(); !st.Configured || st.Enabled || !strings.Contains(st.Error, store) {
		t.Errorf("status %+v", st)
	}
	if b.Engine().JetStreamEnabled() {
		t.Error("JetStream on")
	}
	tc := p.adminTLS(t)
	roundTrip(t, mustConnect(t, b.ClientURL(), tc), mustConnect(t, b.ClientURL(), tc), "mcollective.broadcast.agent.rpcutil")
}

// The broker's in-process login is a pipe with the secret: a TLS client
// presenting the user name and no secret is treated as any client.
func TestStreamsInprocLoginNeedsPipe(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, _, _ := runBroker(t, streamsConfig(p, t.TempDir()))
	// a node certificate with the in-process user name still has the node role
	node := clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))
	nc, err := connect(b.ClientURL(), node, nats.UserInfo(inprocUser, "guess"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("$JS.API.STREAM.NAMES", nil, time.Second); err == nil {
		t.Error("a node certificate used the JetStream API by claiming the in-process login")
	}
	if !b.Engine().JetStreamEnabled() {
		t.Error("JetStream off")
	}
}

// A 3-broker cluster: the standard streams at R3; with a member stopped
// writes are still acknowledged; restarted, it catches up.
func TestStreamsCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-broker JetStream cluster takes several seconds")
	}
	t.Parallel()
	p := newTestPKI(t)
	const n = 3
	ports := make([]int, n)
	var peers []string
	for i := range ports {
		ports[i] = testutil.FreePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	cfgs := make([]*config.Config, n)
	bs := make([]*Broker, n)
	logs := make([]*syncBuffer, n)
	stops := make([]func(), n)
	for i := range n {
		cfgs[i] = p.member(t, i+1, peers, ports[i])
		cfgs[i].StatsPort = 0
		cfgs[i].Network.Stream.Store = t.TempDir()
		bs[i], logs[i], stops[i] = runBroker(t, cfgs[i])
	}
	waitRoutes(t, bs, n-1, logs)
	tc := p.adminTLS(t)
	_, js := streamsJS(t, bs[0].ClientURL(), tc)
	got := waitStreams(t, js, standardNames, 60*time.Second, logs[0])
	for name, c := range got {
		if c.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3", name, c.Replicas)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "DATA", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			var err error
			for try := 0; try < 50; try++ { // a leader election after a loss takes a moment
				if _, err = kv.Put(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprint(i))); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("put k%d: %v", i, err)
			}
		}
	}
	put(0, 200)

	// the third member goes; the others keep acknowledging writes
	stops[2]()
	put(200, 400)

	bs[2], logs[2], stops[2] = runBroker(t, cfgs[2])
	waitRoutes(t, bs, n-1, logs)
	put(400, 450)
	// the restarted member holds every write in its replica of KV_DATA
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last uint64
		if jsz, err := bs[2].Engine().Jsz(&server.JSzOptions{Accounts: true, Streams: true}); err == nil {
			for _, a := range jsz.AccountDetails {
				for _, s := range a.Streams {
					if s.Name == "KV_DATA" {
						last = s.State.LastSeq
					}
				}
			}
		}
		if last == 450 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted member has KV_DATA up to %d, want 450\n%s", last, logs[2])
		}
		time.Sleep(200 * time.Millisecond)
	}
	// and every acknowledged write reads back through it
	_, js3 := streamsJS(t, bs[2].ClientURL(), tc)
	kv3, err := js3.KeyValue(ctx, "DATA")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 450 {
		if e, err := kv3.Get(ctx, fmt.Sprintf("k%d", i)); err != nil || string(e.Value()) != fmt.Sprint(i) {
			t.Fatalf("k%d: %v %v", i, e, err)
		}
	}
}

func TestStreamLoss(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	rec := streamRecord{Name: "S", Messages: 10, FirstSeq: 1, LastSeq: 10, FirstTime: now.Add(-2 * time.Hour), LastTime: now.Add(-time.Hour), MaxAge: 24 * time.Hour}
	st := func(msgs, first, last uint64) *server.StreamState {
		return &server.StreamState{Msgs: msgs, FirstSeq: first, LastSeq: last}
	}
	aged := rec
	aged.MaxAge = 90 * time.Minute // the first messages have expired, not the last
	allAged := rec
	allAged.MaxAge = 30 * time.Minute
	for _, c := range []struct {
		name string
		rec  streamRecord
		cur  *server.StreamState
		want string // "" for no loss
	}{
		{"same", rec, st(10, 1, 10), ""},
		{"more written", rec, st(12, 1, 12), ""},
		{"emptied", rec, st(0, 0, 0), "held 10 messages, sequences 1 to 10, the last written 1h0m0s ago (max age 24h0m0s); now 0 messages"},
		{"emptied, seq kept", rec, st(0, 11, 10), "now 0 messages"},
		{"first block lost", rec, st(4, 7, 10), "none old enough to expire"},
		{"not loaded", rec, nil, "the engine did not load the stream"},
		{"partly aged", aged, st(4, 7, 10), ""},
		{"aged, last lost", aged, st(0, 11, 10), "now 0 messages"},
		{"all aged", allAged, st(0, 11, 10), ""},
		{"all aged, not loaded", allAged, nil, ""},
		{"was empty", streamRecord{Name: "S"}, st(0, 0, 0), ""},
	} {
		got := streamLoss(c.rec, c.cur, now)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
