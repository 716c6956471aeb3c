package federation

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// world is a federation network ("fed") and member collectives, each its
// own network broker on one development CA, with emulated nodes.
type world struct {
	t       *testing.T
	envs    map[string]*devenv.Env
	brokers map[string]*devbroker.Broker
	client  *fleet.Credentials
	server  *fleet.Credentials

	fedCert, fedKey string // the federation brokers' certificate
	spyCert, spyKey string // a privileged user's, to watch and inject anything
}

// newWorld starts the federation network and one network per member.
func newWorld(t *testing.T, members ...string) *world {
	t.Helper()
	w := &world{t: t, envs: map[string]*devenv.Env{}, brokers: map[string]*devbroker.Broker{}}
	first := t.TempDir()
	for i, name := range append([]string{"fed"}, members...) {
		dir := first
		if i > 0 {
			// The same CA and certificates, a broker.conf of its own.
			dir = t.TempDir()
			if err := os.CopyFS(filepath.Join(dir, "ssl"), os.DirFS(filepath.Join(first, "ssl"))); err != nil {
				t.Fatal(err)
			}
		}
		env, err := devenv.Prepare(dir, devenv.Options{ClientPort: testutil.FreePort(t)})
		if err != nil {
			t.Fatal(err)
		}
		// Every network gives the federation broker's certificate its role.
		f, err := os.OpenFile(env.BrokerConf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "plugin.choria.network.federation_brokers = ^%s$\n", regexp.QuoteMeta(fedCertname))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		w.envs[name] = env
		w.brokers[name] = devbroker.Start(t, env)
	}
	w.fedCert, w.fedKey = w.issue(fedCertname)
	w.spyCert, w.spyKey = w.issue(spyCertname)
	w.client = w.credentials(w.envs["fed"].ClientConf, false)
	w.server = w.credentials(w.envs["fed"].ServerConf, true)
	return w
}

// Names of the federation brokers' and the spy's certificates.
const (
	fedCertname = "federation-broker.example.net"
	spyCertname = "spy.privileged.mcollective"
)

// issue makes a certificate of the development CA outside the ssldir, so
// that emulated nodes never pick it up.
func (w *world) issue(name string) (certFile, keyFile string) {
	w.t.Helper()
	env := w.envs["fed"]
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name})
	must(w.t, err)
	certFile, keyFile = filepath.Join(env.Dir, name+".pem"), filepath.Join(env.Dir, name+".key")
	must(w.t, kp.Save(certFile, keyFile))
	return certFile, keyFile
}

func (w *world) credentials(path string, nodes bool) *fleet.Credentials {
	w.t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := fleet.LoadCredentials(cfg, nodes)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) url(name string) string { return w.brokers[name].URL() }

// config is a federation broker's broker.conf for member cluster.
func (w *world) config(cluster string) *config.Config {
	env := w.envs["fed"]
	cfg := config.Default()
	cfg.Identity = fedCertname
	cfg.BrokerFederation = true
	cfg.Federation.Cluster = cluster
	cfg.Federation.MiddlewareHosts = []string{w.url("fed")}
	cfg.MiddlewareHosts = []string{w.url(cluster)}
	cfg.UseSRV = false
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate, cfg.Security.FileKey, cfg.Security.FileCA = w.fedCert, w.fedKey, env.PKI.CAFile()
	return cfg
}

// instance is a running federation broker.
type instance struct {
	*Broker
	reg  *prometheus.Registry
	stop func()
}

// federate runs a federation broker for cluster until stop or the test's end.
func (w *world) federate(cluster string, mod func(*tuning)) *instance {
	w.t.Helper()
	return w.start(w.config(cluster), nil, mod)
}

// start runs a federation broker with cfg, looking SRV records up with
// lookup, until stop or the test's end.
func (w *world) start(cfg *config.Config, lookup srvLookup, mod func(*tuning)) *instance {
	w.t.Helper()
	cluster := cfg.Federation.Cluster
	tune := defaultTuning()
	if mod != nil {
		mod(&tune)
	}
	reg := prometheus.NewRegistry()
	b, err := newBroker(cfg, slog.New(slog.DiscardHandler), reg, tune, lookup)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	in := &instance{Broker: b, reg: reg}
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				w.t.Errorf("federation broker %s: %v", cluster, err)
			}
		case <-time.After(30 * time.Second):
			w.t.Errorf("federation broker %s did not stop within 30s", cluster)
		}
	}
	w.t.Cleanup(in.stop)
	select {
	case <-b.Ready():
	case err := <-done:
		w.t.Fatalf("federation broker %s stopped: %v", cluster, err)
	case <-time.After(30 * time.Second):
		w.t.Fatalf("federation broker %s not ready within 30s", cluster)
	}
	return in
}

// emulate runs n nodes named <cluster>-node<i>.example.net in a collective.
func (w *world) emulate(cluster string, n int) *fleet.Emulator {
	w.t.Helper()
	c := w.server
	o := c.EmulatorOptions(n)
	o.Servers, o.IdentityPattern, o.Collectives = []string{w.url(cluster)}, cluster+"-node%d.example.net", nil
	e, err := fleet.NewEmulator(o)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			w.t.Error("emulator did not stop within 30s")
		}
	})
	waitUntil(w.t, 60*time.Second, func() bool { return e.Stats().Connected == n }, cluster+" nodes connected")
	return e
}

// ping is a federated client's ping on the federation network.
func (w *world) ping(federations []string, mod func(*fleet.PingOptions)) *fleet.PingResult {
	w.t.Helper()
	o := fleet.PingOptions{Servers: []string{w.url("fed")}, Cert: w.client.Cert, CA: w.client.CA, Timeout: 10 * time.Second, Federations: federations}
	if mod != nil {
		mod(&o)
	}
	res, err := fleet.Ping(context.Background(), o)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

// spy is a raw client on one of the networks.
func (w *world) spy(name string) *nats.Conn {
	w.t.Helper()
	kp, err := pki.LoadKeyPair(w.spyCert, w.spyKey)
	must(w.t, err)
	nc, err := nats.Connect(w.url(name), nats.Secure(fleet.TLSConfig(kp, w.client.CA)), nats.NoReconnect())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(nc.Close)
	return nc
}

func waitUntil(t testing.TB, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sum adds up a metric family's samples whose labels include want.
func sum(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Summary != nil:
				total += float64(m.GetSummary().GetSampleCount())
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// expectNames fails unless res holds exactly the union of the fleets' nodes.
func expectNames(t testing.TB, res *fleet.PingResult, fleets ...*fleet.Emulator) {
	t.Helper()
	var want []string
	for _, e := range fleets {
		want = append(want, e.Identities()...)
	}
	sort.Strings(want)
	got := res.Names()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		missing := res.Missing(want)
		t.Fatalf("%d replies, want %d; missing %v; duplicates %d", len(got), len(want), missing[:min(10, len(missing))], res.Duplicates)
	}
	if res.Duplicates != 0 || res.Invalid != 0 {
		t.Fatalf("%d duplicate and %d invalid replies", res.Duplicates, res.Invalid)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
