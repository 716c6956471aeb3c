package preflight

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// fleet is the fleet size the host fixtures are tuned around.
const fleet = 50000

// parse reads a configuration from text; identity must be set so that no
// test asks DNS for the host's name.
func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "broker.conf"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hostEnv runs checks against a fixture host under testdata/hosts.
func hostEnv(t *testing.T, host string, cfg *config.Config) *Env {
	t.Helper()
	if cfg == nil {
		cfg = parse(t, "identity = broker.example.net\nplugin.choria.use_srv = false\n")
	}
	return &Env{Config: cfg, Nodes: fleet, Sys: Host{Root: filepath.Join("testdata", "hosts", host), Resolver: noDNS{}}, Now: time.Now(), Measure: 20 * time.Millisecond}
}

// run runs one check and names every result after it.
func run(t *testing.T, c Check, env *Env) []Result {
	t.Helper()
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	if env.Measure == 0 {
		env.Measure = 20 * time.Millisecond
	}
	rs := c.Run(context.Background(), env)
	if len(rs) == 0 {
		t.Fatalf("%s returned no result", c.Name())
	}
	for i := range rs {
		t.Logf("%s %s: %s: found %q; fix %q", c.Name(), rs[i].Item, rs[i].Status, rs[i].Found, rs[i].Fix)
		if rs[i].Status == "" || rs[i].Found == "" || rs[i].Wanted == "" {
			t.Errorf("%s: incomplete result %+v", c.Name(), rs[i])
		}
		if rs[i].Status != Pass && rs[i].Status != Skip && rs[i].Fix == "" {
			t.Errorf("%s: %s without a fix: %+v", c.Name(), rs[i].Status, rs[i])
		}
	}
	return rs
}

// one runs a check that gives a single result.
func one(t *testing.T, c Check, env *Env) Result {
	t.Helper()
	rs := run(t, c, env)
	if len(rs) != 1 {
		t.Fatalf("%s: want one result, got %+v", c.Name(), rs)
	}
	return rs[0]
}

// item finds the result about item.
func item(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Item == name {
			return r
		}
	}
	t.Fatalf("no result for %q in %+v", name, rs)
	return Result{}
}

func expect(t *testing.T, r Result, status Status, found ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s %s: status %s, want %s: found %q, fix %q", r.Check, r.Item, r.Status, status, r.Found, r.Fix)
	}
	for _, f := range found {
		if !strings.Contains(r.Found, f) {
			t.Errorf("%s %s: found %q does not say %q", r.Check, r.Item, r.Found, f)
		}
	}
}

// noDNS refuses every query: tests must not reach a real DNS server.
type noDNS struct{}

func (noDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no DNS in tests", Name: host, IsNotFound: true}
}

func (noDNS) LookupSRV(_ context.Context, _, _, name string) (string, []*net.SRV, error) {
	return "", nil, &net.DNSError{Err: "no DNS in tests", Name: name, IsNotFound: true}
}

// fakeDNS answers from maps; a name missing is not found, and failing
// names a server failure.
type fakeDNS struct {
	hosts   map[string][]string
	srv     map[string][]*net.SRV
	failing bool
}

func (f fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f fakeDNS) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	q := "_" + service + "._" + proto + "." + name
	if f.failing {
		return "", nil, &net.DNSError{Err: "server misbehaving", Name: q, IsTemporary: true}
	}
	if s, ok := f.srv[q]; ok {
		return q, s, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: q, IsNotFound: true}
}

// ssl is a Puppet-style ssldir made for a test.
type ssl struct {
	dir      string
	identity string
	ca       *pki.CA
	pair     *pki.KeyPair
}

// sslOptions shape the broker's certificate and CRL; zero values give a
// valid ssldir for broker.example.net.
type sslOptions struct {
	issue      pki.IssueOptions // Name defaults to the identity
	crlNext    time.Time        // default: in a year
	revokeSelf bool
	noCRL      bool
}

func newSSL(t *testing.T, o sslOptions) *ssl {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("Test Puppet CA", now.Add(-time.Hour), now.Add(5*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &ssl{dir: t.TempDir(), identity: "broker.example.net", ca: ca}
	if o.issue.Name == "" {
		o.issue.Name = s.identity
	}
	if o.issue.KeyType == "" {
		o.issue.KeyType = "ec" // fast; RSA where the key size matters
	}
	s.pair, err = ca.Issue(o.issue)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.KeyPEM(s.pair.Key)
	s.write(t, "certs/ca.pem", pki.CertsPEM(ca.Cert))
	s.write(t, "certs/"+o.issue.Name+".pem", pki.CertsPEM(s.pair.Chain...))
	s.write(t, "private_keys/"+o.issue.Name+".pem", key)
	if o.revokeSelf {
		ca.Revoke(s.pair.Leaf())
	}
	if o.crlNext.IsZero() {
		o.crlNext = now.Add(365 * 24 * time.Hour)
	}
	if !o.noCRL {
		crl, err := ca.CRLChainPEM(o.crlNext.Add(-48*time.Hour), o.crlNext)
		if err != nil {
			t.Fatal(err)
		}
		s.write(t, "crl.pem", crl)
	}
	return s
}

func (s *ssl) path(rel string) string { return filepath.Join(s.dir, rel) }

func (s *ssl) write(t *testing.T, rel string, data []byte) {
	t.Helper()
	if err := pki.WriteFile(s.path(rel), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// config is a broker.conf on this ssldir with extra lines.
func (s *ssl) config(t *testing.T, extra ...string) *config.Config {
	t.Helper()
	return parse(t, fmt.Sprintf("identity = %s\nplugin.choria.broker_network = true\nplugin.choria.use_srv = false\nplugin.choria.ssldir = %s\n%s\n", s.identity, s.dir, strings.Join(extra, "\n")))
}

// env runs checks on this ssldir on a tuned fixture host.
func (s *ssl) env(t *testing.T, extra ...string) *Env {
	t.Helper()
	return hostEnv(t, "tuned", s.config(t, extra...))
}

// writeFile writes a fixture file in a test's own directory.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
