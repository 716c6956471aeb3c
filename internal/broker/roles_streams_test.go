package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// connectInbox is connectRole with nats.go's inbox prefix set as a
// go-choria program sets it (<collective>.reply under mTLS).
func connectInbox(t *testing.T, b *Broker, p *testPKI, kp *pki.KeyPair, inbox string) *roleConn {
	t.Helper()
	rc := &roleConn{errs: make(chan error, 64)}
	nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, kp), nats.CustomInboxPrefix(inbox), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case rc.errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("%s refused: %v", kp.Leaf().Subject.CommonName, err)
	}
	t.Cleanup(nc.Close)
	rc.Conn = nc
	return rc
}

// refused runs do, expects it to fail, and waits for the engine's
// permissions error on a subject starting with subject and the log line
// naming it and fix.
func refused(t *testing.T, rc *roleConn, logs *syncBuffer, subject, fix string, do func() error) {
	t.Helper()
	if err := do(); err == nil {
		t.Fatalf("%s: allowed", subject)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-rc.errs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+subject) {
				continue
			}
		case <-deadline:
			t.Fatalf("no permissions error for %s", subject)
		}
		break
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if len(logs.lines("subject refused", "subject="+subject, fix)) > 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("refusal of %s not logged with %q\n%s", subject, fix, logs)
		}
	}
}

// streamsFixture starts a broker with Streams and, as a privileged
// user, the buckets, governor and submission stream a fleet's operator
// makes; it returns the broker, its log and the admin's JetStream.
func streamsFixture(t *testing.T, privateReplies bool) (*Broker, *syncBuffer, *testPKI, jetstream.JetStream) {
	t.Helper()
	p := newTestPKI(t)
	cfg := streamsConfig(p, t.TempDir())
	cfg.Network.Stream.PrivateReplies = privateReplies
	b, logs := startBroker(t, cfg, withLogLimit(logLimit{Burst: 1000, Every: time.Millisecond, Period: time.Minute}))
	_, js := streamsJS(t, b.ClientURL(), p.adminTLS(t))
	waitStreams(t, js, standardNames, 20*time.Second, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, bucket := range []string{"CONFIG", "CHORIA_SERVICES"} {
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "app.version", []byte("1.2.3")); err != nil {
			t.Fatal(err)
		}
	}
	for _, sc := range []jetstream.StreamConfig{
		{Name: "GOVERNOR_DEPLOY", Subjects: []string{"mcollective.governor.DEPLOY"}, MaxMsgs: 2, Discard: jetstream.DiscardNew, MaxAge: time.Minute},
		{Name: "SUBMISSION", Subjects: []string{"mcollective.submission.in.>"}},
		{Name: "KV_PLAIN", Subjects: []string{"$KV.PLAIN.>"}}, // a bucket without direct get
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	return b, logs, p, js
}

// TestStreamsRolesNode: with Streams on, every stock node feature of a
// go-choria server works with a node certificate (nats.go's JetStream
// context, as go-choria's server uses, inbox mcollective.reply), and
// nothing beyond: no KV writes, stream create or delete, consumers,
// other streams' messages.
func TestStreamsRolesNode(t *testing.T) {
	t.Parallel()
	b, logs, p, admin := streamsFixture(t, false)
	node := connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}), "mcollective.reply")
	js, err := node.JetStream(nats.MaxWait(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// KV watcher and plugins manager: STREAM.INFO, then direct gets.
	kv, err := js.KeyValue("CONFIG")
	if err != nil {
		t.Fatalf("kv bind: %v", err)
	}
	if e, err := kv.Get("app.version"); err != nil || string(e.Value()) != "1.2.3" {
		t.Fatalf("kv get: %v %v", e, err)
	}
	// Governor: take a slot, give it back.
	ack, err := js.Publish("mcollective.governor.DEPLOY", []byte("node1"))
	if err != nil {
		t.Fatalf("governor slot: %v", err)
	}
	if err := js.DeleteMsg("GOVERNOR_DEPLOY", ack.Sequence); err != nil {
		t.Fatalf("governor release: %v", err)
	}
	// Reliable submission, lifecycle and machine events, gossip: each acknowledged by its stream.
	for subject, stream := range map[string]string{
		"mcollective.submission.in.app.x":          "SUBMISSION",
		"choria.lifecycle.event.startup.server":    "CHORIA_EVENTS",
		"choria.lifecycle.event.governor.deploy":   "CHORIA_EVENTS",
		"choria.machine.transition":                "CHORIA_MACHINE",
		"choria.machine.watcher.exec.state":        "CHORIA_MACHINE",
		"$KV.CHORIA_SERVICES.c.https.web.node1":    "KV_CHORIA_SERVICES",
		"choria.submission.in.choria.executor.x.y": "CHORIA_EXECUTOR",
	} {
		if a, err := js.Publish(subject, []byte("{}")); err != nil || a.Stream != stream {
			t.Fatalf("%s: %+v %v", subject, a, err)
		}
	}
	// Registration and replies stay as before.
	roundTrip(t, node.Conn, node.Conn, replySubject("node1.example.net")+".1")

	privileged := "plugin.choria.security.privileged_users"
	for _, c := range []struct {
		subject, fix string
		do           func() error
	}{
		{"$KV.CONFIG.app.version", privileged, func() error { _, err := kv.Put("app.version", []byte("evil")); return err }},
		{"$JS.API.STREAM.CREATE.EVIL", privileged, func() error {
			_, err := js.AddStream(&nats.StreamConfig{Name: "EVIL", Subjects: []string{"mcollective.broadcast.agent.>"}})
			return err
		}},
		{"$JS.API.STREAM.DELETE.KV_CONFIG", privileged, func() error { return js.DeleteStream("KV_CONFIG") }},
		{"$JS.API.STREAM.UPDATE.CHORIA_EVENTS", privileged, func() error {
			_, err := js.UpdateStream(&nats.StreamConfig{Name: "CHORIA_EVENTS", Subjects: []string{"choria.lifecycle.>"}, MaxAge: time.Second})
			return err
		}},
		{"$JS.API.CONSUMER.CREATE.CHORIA_EVENTS", privileged, func() error {
			_, err := js.AddConsumer("CHORIA_EVENTS", &nats.ConsumerConfig{AckPolicy: nats.AckNonePolicy})
			return err
		}},
		{"$JS.API.STREAM.MSG.GET.CHORIA_EVENTS", privileged, func() error { _, err := js.GetMsg("CHORIA_EVENTS", 1); return err }},
		{"$JS.API.DIRECT.GET.CHORIA_EXECUTOR", privileged, func() error { _, err := js.GetMsg("CHORIA_EXECUTOR", 1, nats.DirectGet()); return err }},
		{"$JS.API.STREAM.MSG.DELETE.CHORIA_EVENTS", privileged, func() error { return js.DeleteMsg("CHORIA_EVENTS", 1) }},
		{"$JS.API.STREAM.MSG.GET.KV_PLAIN", "--allow-direct", func() error {
			_, err := js.GetLastMsg("KV_PLAIN", "$KV.PLAIN.k")
			return err
		}},
		{"mcollective.reply.*", privileged, func() error { // consumer deliveries: kv watch
			_, err := node.Subscribe("mcollective.reply.*", func(*nats.Msg) {})
			if err == nil {
				err = node.FlushTimeout(2 * time.Second)
			}
			if err == nil {
				err = node.LastError()
			}
			return errOrPending(err)
		}},
	} {
		refused(t, node, logs, c.subject, c.fix, c.do)
	}
	// The event history is intact: the refused update did not happen.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s, err := admin.Stream(ctx, "CHORIA_EVENTS"); err != nil || s.CachedInfo().Config.MaxAge == time.Second || s.CachedInfo().State.Msgs < 2 {
		t.Fatalf("CHORIA_EVENTS changed: %v", err)
	}

	// The trade-off of the shared inbox, as the README says: a node
	// certificate may read a client's RPC replies.
	other := replySubject("rip.mcollective")
	sub, err := node.SubscribeSync(other + ".*")
	if err != nil {
		t.Fatal(err)
	}
	node.Flush()
	if !outcome(t, sub, node, func() { node.Publish(other+".req1", []byte("x")); node.Flush() }) {
		t.Fatal("with the shared inbox a node can read client replies; the README says so")
	}
}

// errOrPending turns "no error yet" into one, so that refused waits for
// the asynchronous permissions error instead.
func errOrPending(err error) error {
	if err == nil {
		return errors.New("asynchronous")
	}
	return err
}

// TestStreamsRolesClient: with Streams on, a client certificate uses KV,
// governors and elections with nats.go's jetstream package and the
// inbox go-choria uses, and lists streams (`choria broker stream ls`);
// creating or deleting streams, buckets included, is privileged.
func TestStreamsRolesClient(t *testing.T) {
	t.Parallel()
	b, logs, p, _ := streamsFixture(t, false)
	rc := connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}), "mcollective.reply")
	clientKV(t, rc)
	js, _ := jetstream.New(rc.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	names := js.StreamNames(ctx)
	var n int
	for range names.Name() {
		n++
	}
	if names.Err() != nil || n < 5 {
		t.Fatalf("stream ls: %d streams, %v", n, names.Err())
	}
	gov, err := js.Stream(ctx, "GOVERNOR_DEPLOY")
	if err != nil {
		t.Fatal(err)
	}
	a, err := js.Publish(ctx, "mcollective.governor.DEPLOY", []byte("rip"))
	if err != nil {
		t.Fatalf("governor slot: %v", err)
	}
	if err := gov.DeleteMsg(ctx, a.Sequence); err != nil {
		t.Fatalf("governor release: %v", err)
	}
	election, err := js.KeyValue(ctx, "CHORIA_LEADER_ELECTION")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := election.Create(ctx, "app", []byte("rip")); err != nil {
		t.Fatalf("election campaign: %v", err)
	}

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	fix := "plugin.choria.security.privileged_users"
	refused(t, rc, logs, "$JS.API.STREAM.CREATE.KV_NEW", fix, func() error {
		_, err := js.CreateKeyValue(short(), jetstream.KeyValueConfig{Bucket: "NEW"})
		return err
	})
	refused(t, rc, logs, "$JS.API.STREAM.DELETE.KV_CONFIG", fix, func() error { return js.DeleteKeyValue(short(), "CONFIG") })
}

// clientKV puts, gets and watches CONFIG, as choria kv does.
func clientKV(t *testing.T, rc *roleConn) {
	t.Helper()
	js, err := jetstream.New(rc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "CONFIG")
	if err != nil {
		t.Fatalf("kv bind: %v", err)
	}
	w, err := kv.Watch(ctx, "app.>")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := <-w.Updates(); e == nil || string(e.Value()) != "1.2.3" {
		t.Fatalf("watch: %v", e)
	}
	<-w.Updates() // end of the initial values
	if _, err := kv.Put(ctx, "app.version", []byte("2.0.0")); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	if e, err := kv.Get(ctx, "app.version"); err != nil || string(e.Value()) != "2.0.0" {
		t.Fatalf("kv get: %v %v", e, err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || string(e.Value()) != "2.0.0" {
			t.Fatalf("watch: %v", e)
		}
	case <-ctx.Done():
		t.Fatal("watch saw nothing")
	}
}

// TestStreamsPrivateReplies: with stream.private_replies, no client or
// node may subscribe the shared inbox, so none reads another client's
// replies; node-side Streams is off, and a client uses Streams with its
// own reply subject as inbox prefix.
func TestStreamsPrivateReplies(t *testing.T) {
	t.Parallel()
	b, logs, p, _ := streamsFixture(t, true)
	setting := "plugin.choria.network.stream.private_replies"
	other := replySubject("other.mcollective")
	for _, name := range []string{"node1.example.net", "rip.mcollective"} {
		rc := connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: name}), "mcollective.reply")
		js, _ := jetstream.New(rc.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// The JetStream inbox, mcollective.reply.<nuid>.*, is refused.
		refused(t, rc, logs, "mcollective.reply.", setting, func() error {
			_, err := js.KeyValue(ctx, "CONFIG")
			return err
		})
		cancel()
		refused(t, rc, logs, other+".*", setting, func() error {
			_, err := rc.SubscribeSync(other + ".*")
			if err == nil {
				err = rc.FlushTimeout(2 * time.Second)
			}
			return errOrPending(err)
		})
	}
	// Node-side Streams is off altogether.
	node := connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: "node2.example.net"}), replySubject("node2.example.net"))
	refused(t, node, logs, "mcollective.governor.DEPLOY", setting, func() error {
		js, _ := jetstream.New(node.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "mcollective.governor.DEPLOY", []byte("node2"))
		return err
	})
	// A client whose inbox is its own reply subject uses Streams.
	clientKV(t, connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}), replySubject("rip.mcollective")))
}

// TestStreamsOffRoles: without Streams nothing is widened, and a refused
// Streams subject names the setting that turns Streams on.
func TestStreamsOffRoles(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs := startBroker(t, p.config())
	for _, name := range []string{"node1.example.net", "rip.mcollective"} {
		rc := connectInbox(t, b, p, p.issue(t, pki.IssueOptions{Name: name}), "mcollective.reply")
		refused(t, rc, logs, "$JS.API.STREAM.NAMES", "plugin.choria.network.stream.store", func() error {
			_, err := rc.Request("$JS.API.STREAM.NAMES", nil, time.Second)
			return err
		})
	}
}
