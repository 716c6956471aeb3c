package adapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// load parses text as broker.conf in a temporary directory.
func load(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Refused(); err != nil {
		t.Fatalf("adapter keys refused: %v", err)
	}
	return cfg
}

func TestSpecsDefaults(t *testing.T) {
	t.Parallel()
	cfg := load(t, "plugin.choria.adapters = reg\nplugin.choria.adapter.reg.type = jetstream\nplugin.choria.adapter.reg.ingest.topic = mcollective.broadcast.agent.registration\n")
	specs, err := Specs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "reg", Type: "choria_streams", QueueLen: 1000, IngestTopic: "mcollective.broadcast.agent.registration", IngestProtocol: "reply", IngestWorkers: 10, StreamTopic: "reg", StreamWorkers: 10}
	if len(specs) != 1 || fmt.Sprint(specs[0]) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", specs, want)
	}
}

// Bad adapters are named with file:line and what to set.
func TestSpecsErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ conf, says string }{
		"unknown type":  {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = kafka\nplugin.choria.adapter.a.ingest.topic = x\n", `broker.conf:2: plugin.choria.adapter.a.type: unknown Protocol Adapter type "kafka"`},
		"no type":       {"plugin.choria.adapters = a\nplugin.choria.adapter.a.ingest.topic = x\n", `broker.conf:1: plugin.choria.adapter.a.type: missing`},
		"deprecated":    {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = nats_stream\nplugin.choria.adapter.a.ingest.topic = x\n", "broker.conf:2: plugin.choria.adapter.a.type: nats_stream is deprecated"},
		"no topic":      {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\n", "broker.conf:1: plugin.choria.adapter.a.ingest.topic: missing"},
		"bad workers":   {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.a.stream.workers = lots\n", `broker.conf:4: plugin.choria.adapter.a.stream.workers: "lots" is not a whole number`},
		"bad protocol":  {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.a.ingest.protocol = requests\n", `broker.conf:4: plugin.choria.adapter.a.ingest.protocol: "requests" is not request or reply`},
		"wildcard out":  {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.a.stream.topic = out.>\n", "broker.conf:4: plugin.choria.adapter.a.stream.topic"},
		"misspelt":      {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.a.stream.topik = y\n", `broker.conf:4: plugin.choria.adapter.a.stream.topik: unknown adapter setting "stream.topik"`},
		"not listed":    {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.b.type = choria_streams\n", `broker.conf:4: plugin.choria.adapter.b.type: adapter "b" is not in plugin.choria.adapters`},
		"queue too big": {"plugin.choria.adapters = a\nplugin.choria.adapter.a.type = choria_streams\nplugin.choria.adapter.a.ingest.topic = x\nplugin.choria.adapter.a.queue_len = 0\n", "broker.conf:4: plugin.choria.adapter.a.queue_len"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Specs(load(t, tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %q", err, tc.says)
			}
		})
	}
}

func TestDecodeNotAChoriaMessage(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "{}", `{"protocol":"choria:transport:1","data":"bm90IGpzb24="}`} {
		if _, err := decode([]byte(p), true); err == nil {
			t.Errorf("%q decoded", p)
		}
	}
}

// The registration adapter stores an emulated fleet's registration in a
// stream, one subject per node, in go-choria's output format.
func TestRegistrationToStream(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	f, err := os.OpenFile(env.BrokerConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `plugin.choria.network.stream.store = %s
plugin.choria.adapters = reg
plugin.choria.adapter.reg.type = choria_streams
plugin.choria.adapter.reg.ingest.topic = mcollective.broadcast.agent.registration
plugin.choria.adapter.reg.ingest.protocol = request
plugin.choria.adapter.reg.ingest.workers = 2
plugin.choria.adapter.reg.stream.topic = choria.registration.%%s
plugin.choria.adapter.reg.stream.workers = 2
`, t.TempDir())
	f.Close()
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	specs, err := Specs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := devbroker.StartConfig(t, env, cfg)

	// The operator makes the target stream, as with go-choria.
	nc, err := nats.Connect(b.URL(), nats.Secure(devbroker.IssueTLS(t, env, "admin.privileged.mcollective")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st jetstream.Stream
	for st == nil { // JetStream may still be starting
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "REG", Subjects: []string{"choria.registration.>"}, MaxMsgsPerSubject: 1})
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("create stream: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	reg := prometheus.NewRegistry()
	a, err := New(Options{Specs: specs, Identity: cfg.Identity, Connect: b.InProcessConn, Ready: b.Ready(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx) }()
	defer func() {
		stopRun()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Error("adapters did not stop within 10s")
		}
	}()

	const nodes = 5
	fcfg, err := config.Load(env.ServerConf)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := fleet.LoadCredentials(fcfg, true)
	if err != nil {
		t.Fatal(err)
	}
	eo := creds.EmulatorOptions(nodes)
	eo.Servers = []string{b.URL()}
	eo.Registration = 200 * time.Millisecond
	em, err := fleet.NewEmulator(eo)
	if err != nil {
		t.Fatal(err)
	}
	emCtx, stopEm := context.WithCancel(context.Background())
	emDone := make(chan error, 1)
	go func() { emDone <- em.Run(emCtx) }()
	defer func() {
		stopEm()
		<-emDone
	}()

	// Every node's registration lands under its own subject.
	var info *jetstream.StreamInfo
	for {
		info, err = st.Info(ctx, jetstream.WithSubjectFilter("choria.registration.>"))
		if err == nil && len(info.State.Subjects) == nodes {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream has %v subjects after 60s (err %v); adapter %+v, emulator %+v", info.State.Subjects, err, a.Stats("reg"), em.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range em.Identities() {
		m, err := st.GetLastMsgForSubject(ctx, "choria.registration."+id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		var out Output
		if err := json.Unmarshal(m.Data, &out); err != nil {
			t.Fatalf("%s: %v: %s", id, err, m.Data)
		}
		var body registrationPeek
		if err := json.Unmarshal([]byte(out.Data), &body); err != nil {
			t.Fatalf("%s: data is not the registration body: %v: %q", id, err, out.Data)
		}
		if out.Protocol != OutputProtocol || out.Sender != id || len(out.RequestID) != 32 || out.Time.IsZero() || out.Time.Location() != time.UTC || body.Protocol != "choria:registration:filecontent:1" {
			t.Errorf("%s: output %+v, body %+v", id, out, body)
		}
	}
	s := a.Stats("reg")
	if s.Received == 0 || s.Published == 0 || s.Errors != 0 || s.Dropped != 0 {
		t.Errorf("adapter stats %+v", s)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"choria_adapter_received_msgs", "choria_adapter_published_msgs", "choria_adapter_bytes", "choria_adapter_time", "choria_adapter_queue_length", "choria_adapter_queue_capacity"} {
		if !names[n] {
			t.Errorf("metric %s missing from %v", n, names)
		}
	}
}

type registrationPeek struct {
	Protocol string `json:"protocol"`
}

// A full work queue drops and counts; it does not block ingest or grow.
func TestQueueFullDrops(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	b := devbroker.StartConfig(t, env, cfg)
	// No output workers: nothing empties the queue of 3.
	spec := Spec{Name: "q", Type: "choria_streams", QueueLen: 3, IngestTopic: "in.test", IngestProtocol: "request", IngestWorkers: 1, StreamTopic: "out.%s"}
	a, err := New(Options{Specs: []Spec{spec}, Identity: "b", Connect: b.InProcessConn, Ready: b.Ready()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-ran
	}()
	pub, err := b.InProcessConn("test publisher")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	msg := []byte(`{"protocol":"choria:transport:1","data":"` + b64(`{"protocol":"choria:secure:request:1","message":"{\"message\":\"aGk=\",\"envelope\":{\"requestid\":\"r\",\"senderid\":\"n1\",\"time\":1}}"}`) + `"}`)
	deadline := time.Now().Add(30 * time.Second)
	for a.Stats("q").Dropped < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", a.Stats("q"))
		}
		if err := pub.Publish("in.test", msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := a.Stats("q"); s.Received != 3 || s.Errors < s.Dropped {
		t.Errorf("stats %+v: want 3 queued and every drop counted as an error", s)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
