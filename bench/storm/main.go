// Command storm measures what a reconnect storm does to our broker and to
// a stock nats-server side by side: the same certificates, the same
// emulated fleet (reconnecting as go-choria servers do), the same machine.
// For each broker and fleet size it reports memory, calm connect time and
// CPU, broadcast ping times, replies lost, and how long every node takes to
// be back after the broker is restarted under it, and draws the storms.
// A storm's cost is also given as the broker's CPU per node recovered over
// its CPU per node in the calm connect, a figure the fleet's share of the
// machine does not move much.
//
//	go run ./bench/storm                       # the full run, about 40 minutes
//	go run ./bench/storm --nodes 2000 --rsa4096-nodes 0 --storms 1
//	go run ./bench/storm --storms 3 --pings 20 --nodes 10000 --rsa4096-nodes 0 --broker-keys rsa,ec
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/choria-broker/choria-broker/bench/internal/harness"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/limits"
	"github.com/choria-broker/choria-broker/internal/pki"
)

type options struct {
	nodes       []int
	rsa4096     int
	storms      int
	pings       int
	bound       time.Duration
	brokers     []string
	bin, stock  string
	results     string
	chart       string
	connectConc int
	brokerKeys  []string
	stockKeys   []string
	roles       []string
	keep        bool
	stormPing   bool
	goCurves    bool
	profiles    string
	rounds      int
}

func main() {
	var o options
	var nodes, brokers, keys string
	flag.StringVar(&nodes, "nodes", "2000,5000,10000", "fleet sizes with RSA 2048 certificates")
	flag.IntVar(&o.rsa4096, "rsa4096-nodes", 2000, "fleet size with RSA 4096 certificates (Puppet's default); 0 skips")
	flag.IntVar(&o.storms, "storms", 3, "restart storms per setup (the median is reported)")
	flag.IntVar(&o.rounds, "rounds", 1, "run every setup this many times, taking turns, and compare ours with stock round by round (the machine's speed drifts between minutes; a ratio within one round does not)")
	flag.IntVar(&o.pings, "pings", 20, "broadcast pings per setup")
	flag.DurationVar(&o.bound, "bound", 180*time.Second, "give up on a storm after this long")
	flag.StringVar(&brokers, "brokers", "choria-broker,nats-server", "brokers to compare")
	flag.StringVar(&o.bin, "bin", "", "choria-broker binary (default: build one)")
	flag.StringVar(&o.stock, "nats-server", "nats-server", "stock nats-server binary (.ci/install-deps.sh installs the engine's version)")
	flag.StringVar(&o.results, "results", "", "also write the Markdown report to this file")
	flag.StringVar(&o.chart, "chart", "", "write the storm chart (SVG) to this file")
	flag.IntVar(&o.connectConc, "connect-concurrency", 100, "the fleet's first connections in flight")
	flag.StringVar(&keys, "broker-keys", "rsa", "choria-broker's certificate keys to compare: rsa (the fleet's size), ec (ECDSA P-256, as enroll makes), or rsa,ec")
	var stockKeys string
	flag.StringVar(&stockKeys, "stock-broker-keys", "rsa", "stock nats-server's certificate keys, from those in --broker-keys (the same fleet either way)")
	flag.BoolVar(&o.goCurves, "tls-go-curves", false, "the fleet and ping offer Go's default TLS key exchanges (the post-quantum hybrid first) instead of go-choria's X25519, P-256, P-384, P-521")
	flag.StringVar(&o.profiles, "profiles", "", "write each broker's heap profile (Go's pprof format, stock's through its prof_port) 15s after the connect and after the pings, and its CPU profile of the calm connect, of the pings and of the first storm, into this directory")
	var roles string
	flag.StringVar(&roles, "roles", "on", "choria-broker's per-role permissions: on (the default), off (plugin.choria.network.roles = false, unrestricted as go-choria's x509 brokers), or on,off")
	flag.BoolVar(&o.stormPing, "storm-ping", false, "at each storm, also start `ping --expect N --timeout 60` as the broker restarts, as an operator checking the fleet would, and report what it got")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory (broker and fleet logs) and print where it is")
	flag.Parse()
	for _, s := range strings.Split(nodes, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			o.nodes = append(o.nodes, n)
		}
	}
	if o.rounds < 1 {
		fmt.Fprintf(os.Stderr, "bench/storm: --rounds %d: give 1 or more\n", o.rounds)
		os.Exit(2)
	}
	o.brokers = strings.Split(brokers, ",")
	o.brokerKeys = strings.Split(keys, ",")
	o.stockKeys = strings.Split(stockKeys, ",")
	for _, k := range append(slices.Clone(o.brokerKeys), o.stockKeys...) {
		if k != "rsa" && k != "ec" {
			fmt.Fprintf(os.Stderr, "bench/storm: broker key %q: each of --broker-keys and --stock-broker-keys must be rsa or ec, e.g. --broker-keys rsa,ec\n", k)
			os.Exit(2)
		}
	}
	if contains(o.brokers, "nats-server") && !slices.ContainsFunc(o.stockKeys, func(k string) bool { return contains(o.brokerKeys, k) }) {
		fmt.Fprintf(os.Stderr, "bench/storm: --stock-broker-keys %s names no key of --broker-keys %s, so stock nats-server would not run; give one of those, or drop stock with --brokers choria-broker\n", stockKeys, keys)
		os.Exit(2)
	}
	o.roles = strings.Split(roles, ",")
	for _, r := range o.roles {
		if r != "on" && r != "off" {
			fmt.Fprintf(os.Stderr, "bench/storm: --roles %q: each value must be on or off, e.g. --roles on,off\n", roles)
			os.Exit(2)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/storm:", err)
		os.Exit(1)
	}
}

// setup is one row: a broker, a fleet size and a key size.
type setup struct {
	broker    string
	nodes     int
	rsaBits   int
	brokerKey string // "rsa" (the fleet's size) or "ec" (P-256)
	noRoles   bool   // choria-broker with plugin.choria.network.roles = false
	round     int    // 1-based, with --rounds
}

func (s setup) name() string {
	n := s.broker
	if s.brokerKey == "ec" {
		n += " (ECDSA broker key)"
	}
	if s.noRoles {
		n += " (roles off)"
	}
	return n
}

// label names the row: the setup, and its round when there are several.
func (s setup) label(rounds int) string {
	if rounds > 1 {
		return fmt.Sprintf("%s, round %d", s.name(), s.round)
	}
	return s.name()
}

type result struct {
	setup
	rssStart, rssConnected, rssPinged int64 // KiB
	connect                           time.Duration
	connectCPU                        time.Duration
	p50, p99                          []time.Duration
	lost                              int
	recoveries                        []time.Duration // < 0: not back within the bound
	stormCPU                          []time.Duration // broker CPU from listening until all were connected; < 0: not back
	notBack                           []int
	timeline                          []point // first storm
	stormPings                        []stormPing
	err                               error
}

// stormPing is what a ping started with a storm got.
type stormPing struct {
	count int
	took  time.Duration
	err   error
}

// settle is how long after the connect memory is read.
const settle = 15 * time.Second

type point struct {
	at        time.Duration
	connected int
}

func run(o options) error {
	if _, err := limits.RaiseNoFile(200000); err != nil {
		fmt.Fprintln(os.Stderr, "warning:", err)
	}
	dir, err := os.MkdirTemp("", "bench-storm")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "logs kept in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin, err := harness.Build(dir, o.bin)
	if err != nil {
		return err
	}
	stock, err := exec.LookPath(o.stock)
	if err != nil && contains(o.brokers, "nats-server") {
		return fmt.Errorf("stock nats-server not found (%v); .ci/install-deps.sh installs it, or drop it with --brokers choria-broker", err)
	}
	var setups []setup
	add := func(n, bits int) {
		for _, k := range o.brokerKeys {
			for _, b := range o.brokers {
				for _, r := range o.roles {
					if b == "nats-server" && (r != o.roles[0] || !contains(o.stockKeys, k)) {
						continue // roles are ours; stock only with --stock-broker-keys
					}
					setups = append(setups, setup{broker: b, nodes: n, rsaBits: bits, brokerKey: k, noRoles: b != "nats-server" && r == "off"})
				}
			}
		}
	}
	for _, n := range o.nodes {
		add(n, 2048)
	}
	if o.rsa4096 > 0 {
		add(o.rsa4096, 4096)
	}
	fmt.Fprintf(os.Stderr, "fleet and ping offer %s TLS key exchanges\n", curvesText(o.goCurves))
	pkis := map[int]*benchPKI{}
	var results []*result
	// Setups take turns round by round, so that ours and stock are measured
	// minutes apart, not a whole run apart.
	var turns []setup
	for round := 1; round <= o.rounds; round++ {
		for _, s := range setups {
			s.round = round
			turns = append(turns, s)
		}
	}
	for _, s := range turns {
		p := pkis[s.rsaBits]
		if p == nil {
			if p, err = newBenchPKI(filepath.Join(dir, fmt.Sprintf("pki-%d", s.rsaBits)), s.rsaBits); err != nil {
				return err
			}
			pkis[s.rsaBits] = p
		}
		fmt.Fprintf(os.Stderr, "== %s, %d nodes, RSA %d\n", s.label(o.rounds), s.nodes, s.rsaBits)
		r := measure(o, dir, bin, stock, p, s)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "   error: %v\n", r.err)
		}
		results = append(results, r)
	}
	report := markdown(o, results)
	fmt.Print(report)
	if o.results != "" {
		if err := os.WriteFile(o.results, []byte(report), 0o644); err != nil {
			return err
		}
	}
	if o.chart != "" {
		if err := os.WriteFile(o.chart, []byte(chart(o, results)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// benchPKI is a CA, a broker certificate, node certificates in a Puppet
// ssldir and a client certificate, all of one RSA key size.
type benchPKI struct {
	dir, ssldir                    string
	brokerCert, brokerKey, ca, crl string
	ecCert, ecKey                  string
	clientCert, clientKey          string
}

func newBenchPKI(dir string, bits int) (*benchPKI, error) {
	now := time.Now()
	ca, err := pki.NewCA("Bench CA", now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	p := &benchPKI{dir: dir, ssldir: filepath.Join(dir, "ssl")}
	issue := func(name string, certPath, keyPath string, extra ...string) error {
		kp, err := ca.Issue(pki.IssueOptions{Name: name, DNSNames: extra, KeyType: "rsa", RSABits: bits})
		if err != nil {
			return err
		}
		return kp.Save(certPath, keyPath)
	}
	p.brokerCert, p.brokerKey = filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	if err := issueBroker(ca, "rsa", bits, p.brokerCert, p.brokerKey); err != nil {
		return nil, err
	}
	p.ecCert, p.ecKey = filepath.Join(dir, "broker-ec.pem"), filepath.Join(dir, "broker-ec.key")
	if err := issueBroker(ca, "ec", 0, p.ecCert, p.ecKey); err != nil {
		return nil, err
	}
	// Node certificates, shared round robin by the emulated fleet.
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("node%d.bench.example.net", i)
		if err := issue(name, filepath.Join(p.ssldir, "certs", name+".pem"), filepath.Join(p.ssldir, "private_keys", name+".pem")); err != nil {
			return nil, err
		}
	}
	p.clientCert, p.clientKey = filepath.Join(dir, "bench.mcollective.pem"), filepath.Join(dir, "bench.mcollective.key")
	if err := issue("bench.mcollective", p.clientCert, p.clientKey); err != nil {
		return nil, err
	}
	// The CA's own files, as a Puppet CA (and choria-broker dev) keeps
	// them: the emulator then gives each node a certificate of its name,
	// as real nodes have and the broker's node role expects.
	keyPEM, err := pki.KeyPEM(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFile(filepath.Join(p.ssldir, "ca", "ca_key.pem"), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := pki.WriteFile(filepath.Join(p.ssldir, "ca", "ca_crt.pem"), pki.CertsPEM(ca.Cert), 0o644); err != nil {
		return nil, err
	}
	p.ca = filepath.Join(p.ssldir, "certs", "ca.pem")
	if err := pki.WriteFile(p.ca, pki.CertsPEM(ca.Cert), 0o644); err != nil {
		return nil, err
	}
	crl, err := ca.CRLChainPEM(now.Add(-time.Minute), now.Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	p.crl = filepath.Join(p.ssldir, "crl.pem")
	return p, pki.WriteFile(p.crl, crl, 0o644)
}

func issueBroker(ca *pki.CA, keyType string, bits int, certPath, keyPath string) error {
	kp, err := ca.Issue(pki.IssueOptions{Name: "broker.bench.example.net", DNSNames: []string{"localhost"}, IPs: localIPs(), KeyType: keyType, RSABits: bits})
	if err != nil {
		return err
	}
	return kp.Save(certPath, keyPath)
}

// configs writes the broker's, the fleet's and the client's configuration.
// profPort > 0 opens the broker's profiling port on 127.0.0.1.
func (p *benchPKI) configs(dir string, s setup, port, profPort int) (brokerConf, serverConf, clientConf string, err error) {
	broker, brokerKey := s.broker, s.brokerKey
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	cert, key := p.brokerCert, p.brokerKey
	if brokerKey == "ec" {
		cert, key = p.ecCert, p.ecKey
	}
	if broker == "nats-server" {
		brokerConf = filepath.Join(dir, "stock.conf")
		prof := ""
		if profPort > 0 {
			prof = fmt.Sprintf("prof_port: %d\n", profPort)
		}
		// As the seed's Puppet module configured it.
		err = os.WriteFile(brokerConf, []byte(prof+fmt.Sprintf(`listen: 127.0.0.1:%d
max_connections: 100000
max_pending: 67108864
write_deadline: "2s"
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}
`, port, cert, key, p.ca)), 0o644)
	} else {
		brokerConf = filepath.Join(dir, "broker.conf")
		err = os.WriteFile(brokerConf, []byte(fmt.Sprintf(`identity = broker.bench.example.net
loglevel = warn
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
plugin.choria.stats_port = 0
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.security.file.crl = %s
plugin.choria.network.roles = %v
plugin.choria.network.pprof_port = %d
`, port, cert, key, p.ca, p.crl, !s.noRoles, max(profPort, 0))), 0o644)
	}
	if err != nil {
		return
	}
	serverConf = filepath.Join(dir, "server.conf")
	if err = os.WriteFile(serverConf, []byte(fmt.Sprintf("identity = fleet.bench.example.net\nplugin.choria.middleware_hosts = %s\nplugin.choria.use_srv = false\nplugin.security.provider = puppet\nplugin.choria.ssldir = %s\n", url, p.ssldir)), 0o644); err != nil {
		return
	}
	clientConf = filepath.Join(dir, "client.conf")
	err = os.WriteFile(clientConf, []byte(fmt.Sprintf("identity = bench.mcollective\nplugin.choria.middleware_hosts = %s\nplugin.choria.use_srv = false\nplugin.security.provider = file\nplugin.security.file.certificate = %s\nplugin.security.file.key = %s\nplugin.security.file.ca = %s\n", url, p.clientCert, p.clientKey, p.ca)), 0o644)
	return
}

// fleetCount follows the emulator's connected count, and its count of
// reconnects, from its output.
type fleetCount struct {
	mu         sync.Mutex
	connected  int
	reconnects int
	samples    []harness.Line
}

var (
	countRe     = regexp.MustCompile(`(?:connecting: |connected )(\d+)/`)
	reconnectRe = regexp.MustCompile(` reconnects (\d+)`)
)

func (f *fleetCount) observe(l harness.Line) {
	m := countRe.FindStringSubmatch(l.Text)
	if m == nil {
		return
	}
	n, _ := strconv.Atoi(m[1])
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = n
	if m := reconnectRe.FindStringSubmatch(l.Text); m != nil {
		f.reconnects, _ = strconv.Atoi(m[1])
	}
	f.samples = append(f.samples, harness.Line{At: l.At, Text: m[1]})
}

func (f *fleetCount) get() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

// back tells whether every node is connected and has reconnected since
// the fleet counted base reconnects: the output can lag a restart by a
// second, so a full count alone may still be the one from before it.
func (f *fleetCount) back(nodes, base int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected >= nodes && f.reconnects >= base+nodes
}

func (f *fleetCount) reconnected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reconnects
}

func (f *fleetCount) since(t0 time.Time) []point {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []point
	for _, s := range f.samples {
		if s.At.Before(t0) {
			continue
		}
		n, _ := strconv.Atoi(s.Text)
		out = append(out, point{at: s.At.Sub(t0), connected: n})
	}
	return out
}

func measure(o options, dir, bin, stock string, p *benchPKI, s setup) *result {
	r := &result{setup: s}
	work := filepath.Join(dir, fmt.Sprintf("%s-%s-%d-%d-roles-%v-round-%d", s.broker, s.brokerKey, s.nodes, s.rsaBits, !s.noRoles, s.round))
	if r.err = os.MkdirAll(work, 0o755); r.err != nil {
		return r
	}
	port, err := harness.FreePort()
	if err != nil {
		r.err = err
		return r
	}
	profPort := 0
	if o.profiles != "" {
		if profPort, err = harness.FreePort(); err != nil {
			r.err = err
			return r
		}
	}
	brokerConf, serverConf, clientConf, err := p.configs(work, s, port, profPort)
	if err != nil {
		r.err = err
		return r
	}
	pg := pinger{bin: bin, conf: clientConf, goCurves: o.goCurves}
	startBroker := func(i int) (*harness.Proc, error) {
		logf := filepath.Join(work, fmt.Sprintf("broker-%d.log", i))
		var b *harness.Proc
		var err error
		if s.broker == "nats-server" {
			b, err = harness.Start(logf, stock, "-c", brokerConf)
		} else {
			b, err = harness.Start(logf, bin, "run", "--config", brokerConf)
		}
		if err != nil {
			return nil, err
		}
		if err := harness.WaitPort(fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second); err != nil {
			b.Stop()
			return nil, err
		}
		return b, nil
	}
	profName := func(when, ext string) string {
		return filepath.Join(o.profiles, strings.NewReplacer(" ", "-", "(", "", ")", "", ",", "").Replace(fmt.Sprintf("%s-%d-rsa%d-%s.%s", s.label(o.rounds), s.nodes, s.rsaBits, when, ext)))
	}
	profile := func(when string) {
		if profPort == 0 {
			return
		}
		if err := saveProfile(profPort, "heap?gc=1", profName(when, "heap")); err != nil {
			fmt.Fprintf(os.Stderr, "   heap profile %s: %v\n", when, err)
		}
	}
	// cpuProfile starts a CPU profile of the next d; the returned func waits for it.
	cpuProfile := func(when string, d time.Duration) func() {
		if profPort == 0 {
			return func() {}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := saveProfile(profPort, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), profName(when, "cpu")); err != nil {
				fmt.Fprintf(os.Stderr, "   CPU profile %s: %v\n", when, err)
			}
		}()
		return func() { <-done }
	}
	broker, err := startBroker(0)
	if err != nil {
		r.err = err
		return r
	}
	defer func() { broker.Stop() }()
	r.rssStart = broker.Usage().RSSKiB
	cpu0 := broker.Usage().CPU

	fc := &fleetCount{}
	// The calm connect takes about 2 ms a node on 2 cores.
	connectProfiled := cpuProfile("connect", max(5*time.Second, time.Duration(s.nodes)*2*time.Millisecond))
	start := time.Now()
	args := []string{"emulate", "--config", serverConf, "--nodes", strconv.Itoa(s.nodes), "--connect-concurrency", strconv.Itoa(o.connectConc)}
	if o.goCurves {
		args = append(args, "--tls-go-curves")
	}
	emu, err := harness.Start(filepath.Join(work, "emulate.log"), bin, args...)
	if err != nil {
		r.err = err
		return r
	}
	defer emu.Stop()
	emu.Watch(fc.observe)
	at, err := emu.WaitLine(fmt.Sprintf("all %d nodes connected", s.nodes), 15*time.Minute)
	if err != nil {
		r.err = err
		return r
	}
	r.connect = at.Sub(start)
	r.connectCPU = broker.Usage().CPU - cpu0
	connectFleetCPU := emu.Usage().CPU
	// Memory is read once the connect has settled, for both brokers alike.
	time.Sleep(settle)
	r.rssConnected = broker.Usage().RSSKiB
	connectProfiled()
	profile("connected")
	fmt.Fprintf(os.Stderr, "   calm connect %s, broker CPU %s, RSS %d MiB; fleet CPU %s\n", r.connect.Round(10*time.Millisecond), r.connectCPU, r.rssConnected/1024, connectFleetCPU.Round(10*time.Millisecond))

	pingsProfiled := cpuProfile("pings", max(5*time.Second, time.Duration(o.pings)*time.Second/2))
	for i := 0; i < o.pings; i++ {
		count, p50, p99, err := pg.ping(s.nodes, 20*time.Second)
		if err != nil {
			r.err = err
			return r
		}
		r.p50, r.p99 = append(r.p50, p50), append(r.p99, p99)
		r.lost += s.nodes - count
	}
	r.rssPinged = broker.Usage().RSSKiB
	pingsProfiled()
	profile("pinged")

	for i := 0; i < o.storms; i++ {
		// The fleet is quiet now: its last line has the reconnect count.
		base := fc.reconnected()
		stopAt := time.Now()
		broker.Stop()
		t0 := time.Now()
		var pinged chan stormPing
		if o.stormPing {
			pinged = make(chan stormPing, 1)
			go func() {
				count, _, _, err := pg.ping(s.nodes, 60*time.Second)
				pinged <- stormPing{count, time.Since(t0), err}
			}()
		}
		if broker, err = startBroker(i + 1); err != nil {
			r.err = err
			return r
		}
		// Measured from here, as the calm connect is from a listening broker.
		listening, fleetCPU := broker.Usage().CPU, emu.Usage().CPU
		stormProfiled := func() {}
		if i == 0 {
			stormProfiled = cpuProfile("storm", max(5*time.Second, time.Duration(s.nodes)*2*time.Millisecond))
		}
		fmt.Fprintf(os.Stderr, "   storm %d: stopping took %s, listening again after %s\n", i+1, t0.Sub(stopAt).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		rec, back, cpu := awaitRecovery(pg, broker, fc, s.nodes, base, t0, o.bound)
		if i == 0 {
			r.timeline = fc.since(t0.Add(-2 * time.Second))
		}
		stormProfiled()
		if cpu >= 0 {
			cpu -= listening
		}
		r.recoveries, r.notBack, r.stormCPU = append(r.recoveries, rec), append(r.notBack, s.nodes-back), append(r.stormCPU, cpu)
		fmt.Fprintf(os.Stderr, "   storm %d: %s (%d not back), broker CPU %s, %s the calm connect's per node; fleet CPU %s\n", i+1, fmtRecovery(rec, o.bound), s.nodes-back, cpu, fmtRatio(cpuRatio(cpu, r.connectCPU)), (emu.Usage().CPU - fleetCPU).Round(10*time.Millisecond))
		if pinged != nil {
			sp := <-pinged
			r.stormPings = append(r.stormPings, sp)
			fmt.Fprintf(os.Stderr, "   storm %d: ping started with it: %d/%d replies, done after %s (error: %v)\n", i+1, sp.count, s.nodes, sp.took.Round(100*time.Millisecond), sp.err)
		}
		if rec < 0 {
			break // the fleet is not whole; later storms would measure something else
		}
	}
	return r
}

// saveProfile saves one of a broker's profiles (what: the path and query
// after /debug/pprof/) to file.
func saveProfile(port int, what, file string) error {
	c := http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s", port, what))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiling port %d: %s", port, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// awaitRecovery waits until every node is connected again and a ping is
// answered by all, and returns how long after t0 that was (-1 past bound),
// how many were back, and the broker's CPU time when the fleet first said
// every node was back (-1 if it never did).
func awaitRecovery(pg pinger, broker *harness.Proc, fc *fleetCount, nodes, base int, t0 time.Time, bound time.Duration) (time.Duration, int, time.Duration) {
	deadline := t0.Add(bound)
	cpu := time.Duration(-1)
	var lastPing time.Time // when the last ping ended
	for time.Now().Before(deadline) {
		if cpu < 0 && fc.back(nodes, base) {
			cpu = broker.Usage().CPU
		}
		if fc.get() >= nodes && time.Since(lastPing) >= 200*time.Millisecond {
			left := time.Until(deadline)
			count, _, _, err := pg.ping(nodes, min(2*time.Second, max(left, time.Second)))
			lastPing = time.Now()
			if err == nil && count >= nodes {
				rec := time.Since(t0)
				// The ping may have found them as they came back; the
				// fleet says so within 100 ms.
				for wait := time.Now().Add(2 * time.Second); cpu < 0 && time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
					if fc.back(nodes, base) {
						cpu = broker.Usage().CPU
					}
				}
				return rec, nodes, cpu
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1, fc.get(), -1
}

// pinger runs the ping client with the fleet's TLS key exchanges.
type pinger struct {
	bin, conf string
	goCurves  bool
}

func (p pinger) ping(expect int, timeout time.Duration) (int, time.Duration, time.Duration, error) {
	args := []string{"--config", p.conf, "--expect", strconv.Itoa(expect), "--timeout", timeout.String()}
	if p.goCurves {
		args = append(args, "--tls-go-curves")
	}
	res, err := harness.Ping(p.bin, args...)
	if err != nil {
		return 0, 0, 0, err
	}
	return res.Count, res.P50, res.P99, nil
}

// cpuRatio is broker CPU per node recovered in a storm over broker CPU
// per node in the calm connect (the same nodes), or -1 when unknown.
func cpuRatio(storm, calm time.Duration) float64 {
	if storm < 0 || calm <= 0 {
		return -1
	}
	return float64(storm) / float64(calm)
}

func fmtRatio(r float64) string {
	if r < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtMedianRecovery is fmtRecovery for a median where a storm not
// recovered counted as the longest.
func fmtMedianRecovery(d, bound time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return fmt.Sprintf("> %s", bound)
	}
	return fmtRecovery(d, bound)
}

func fmtRecovery(d, bound time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("not within %s", bound)
	}
	return d.Round(100 * time.Millisecond).String()
}

func mib(kib int64) string { return fmt.Sprintf("%.0f", float64(kib)/1024) }

func markdown(o options, results []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Reconnect storm: choria-broker against stock nats-server (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Machine: %d cores, shared by the broker, the emulated fleet (one `choria-broker emulate` process) and the ping client; loopback only.\n", harness.Cores())
	fmt.Fprintf(&b, "Fleet: go-choria's reconnect behaviour (jittered back-off 0.5 s to 20 s, 2 s connect timeout), mutual TLS, %d first connections in flight.\n", o.connectConc)
	fmt.Fprintf(&b, "TLS key exchanges offered by the fleet and the ping client: %s.\n", curvesText(o.goCurves))
	fmt.Fprintf(&b, "Memory: RSS when the broker has started, %s after the fleet connected, and after the pings.\n", settle)
	fmt.Fprintf(&b, "Storm: SIGTERM the broker under the connected fleet, start it again at once; recovery is the time until every node is connected and a broadcast ping is answered by all (bound %s; median of %d storms in each round).\n", o.bound, o.storms)
	b.WriteString("Storm CPU ratio: the broker's CPU seconds per node from listening again until every node is connected, over its CPU seconds per node in the calm connect (1.00× = a storm costs the broker no more than a calm connect; it does not depend on how much CPU the fleet takes from the broker).\n\n")
	fmt.Fprintf(&b, "Command: `go run ./bench/storm %s`\n\n", strings.Join(os.Args[1:], " "))
	b.WriteString("| broker | nodes | fleet key | RSS MiB start / connected / after pings | calm connect | broker CPU for the connect | ping p50 | ping p99 | replies lost | storm recovery (each) | median | not back | storm CPU per node ÷ calm (each) | median |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|\n")
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(&b, "| %s | %d | RSA %d | error: %v |||||||||||\n", r.label(o.rounds), r.nodes, r.rsaBits, r.err)
			continue
		}
		var each []string
		notBack := 0
		for i, d := range r.recoveries {
			each = append(each, fmtRecovery(d, o.bound))
			notBack = max(notBack, r.notBack[i])
		}
		ok := notBackAsMax(r.recoveries)
		medText := fmtMedianRecovery(harness.Median(ok), o.bound)
		if len(ok) == 0 {
			medText = "–" // --storms 0
		}
		ratios, ratioMed := stormRatios(r)
		fmt.Fprintf(&b, "| %s | %d | RSA %d | %s / %s / %s | %s | %s | %s | %s | %d | %s | %s | %d | %s | %s |\n",
			r.label(o.rounds), r.nodes, r.rsaBits, mib(r.rssStart), mib(r.rssConnected), mib(r.rssPinged),
			r.connect.Round(100*time.Millisecond), r.connectCPU.Round(100*time.Millisecond),
			harness.Median(r.p50).Round(time.Millisecond), harness.Median(r.p99).Round(time.Millisecond), r.lost,
			strings.Join(each, ", "), medText, notBack, ratios, ratioMed)
	}
	b.WriteString("\n")
	b.WriteString(comparison(o, results))
	if o.stormPing {
		b.WriteString("Ping started as the broker restarted (`ping --expect N --timeout 60`: it retries its connection while the broker sheds handshakes, and sends the request again while nodes are missing):\n\n")
		b.WriteString("| broker | nodes | storm | replies | done after | error |\n|---|---:|---:|---:|---:|---|\n")
		for _, r := range results {
			for i, sp := range r.stormPings {
				e := "–"
				if sp.err != nil {
					e = sp.err.Error()
				}
				fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s |\n", r.label(o.rounds), r.nodes, i+1, sp.count, sp.took.Round(100*time.Millisecond), e)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// comparison sets each choria-broker setup beside stock nats-server with
// the same fleet and broker key, round by round: each figure as a ratio
// of ours to stock's measured minutes apart, and the median of the rounds.
// Storm recovery is in seconds, the median of every storm of every round,
// as its bar is a time.
func comparison(o options, results []*result) string {
	type figure struct {
		name string
		get  func(*result) float64
	}
	figures := []figure{
		{"calm connect", func(r *result) float64 { return r.connect.Seconds() }},
		{"broker CPU for the connect", func(r *result) float64 { return r.connectCPU.Seconds() }},
		{"RSS connected", func(r *result) float64 { return float64(r.rssConnected) }},
		{"RSS after the pings", func(r *result) float64 { return float64(r.rssPinged) }},
		{"ping p50", func(r *result) float64 { return harness.Median(r.p50).Seconds() }},
		{"ping p99", func(r *result) float64 { return harness.Median(r.p99).Seconds() }},
	}
	stockOf := func(r *result) *result {
		for _, x := range results {
			if x.broker == "nats-server" && x.err == nil && x.round == r.round && x.nodes == r.nodes && x.rsaBits == r.rsaBits && x.brokerKey == r.brokerKey {
				return x
			}
		}
		return nil
	}
	var b strings.Builder
	done := map[setup]bool{}
	for _, r := range results {
		key := r.setup
		key.round = 0
		if r.broker == "nats-server" || done[key] {
			continue
		}
		done[key] = true
		var pairs [][2]*result
		for _, x := range results {
			xk := x.setup
			xk.round = 0
			if xk == key && x.err == nil {
				if st := stockOf(x); st != nil {
					pairs = append(pairs, [2]*result{x, st})
				}
			}
		}
		if len(pairs) == 0 {
			if o.rounds > 1 {
				var ours []time.Duration
				for _, x := range results {
					xk := x.setup
					xk.round = 0
					if xk == key && x.err == nil {
						ours = append(ours, notBackAsMax(x.recoveries)...)
					}
				}
				if len(ours) > 0 {
					fmt.Fprintf(&b, "%s, %d nodes, RSA %d: storm recovery, median of all %d storms: %s.\n\n", r.name(), r.nodes, r.rsaBits, len(ours), fmtMedianRecovery(harness.Median(ours), o.bound))
				}
			}
			continue
		}
		fmt.Fprintf(&b, "%s ÷ nats-server, %d nodes, RSA %d, the same round:\n\n| figure |", r.name(), r.nodes, r.rsaBits)
		for _, p := range pairs {
			fmt.Fprintf(&b, " round %d |", p[0].round)
		}
		b.WriteString(" median |\n|---|")
		b.WriteString(strings.Repeat("---:|", len(pairs)+1) + "\n")
		for _, f := range figures {
			fmt.Fprintf(&b, "| %s |", f.name)
			var rs []float64
			for _, p := range pairs {
				ours, stock := f.get(p[0]), f.get(p[1])
				if stock <= 0 || ours <= 0 {
					b.WriteString(" – |")
					continue
				}
				rs = append(rs, ours/stock)
				fmt.Fprintf(&b, " %.2f× |", ours/stock)
			}
			if len(rs) == 0 {
				b.WriteString(" – |\n")
				continue
			}
			fmt.Fprintf(&b, " %.2f× |\n", medianFloat(rs))
		}
		var ours, stock []time.Duration
		for _, p := range pairs {
			ours, stock = append(ours, notBackAsMax(p[0].recoveries)...), append(stock, notBackAsMax(p[1].recoveries)...)
		}
		if len(ours) > 0 && len(stock) > 0 {
			fmt.Fprintf(&b, "\nStorm recovery, median of all %d storms: %s (stock: %s of %d).\n", len(ours), fmtMedianRecovery(harness.Median(ours), o.bound), fmtMedianRecovery(harness.Median(stock), o.bound), len(stock))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// notBackAsMax counts a storm not recovered within the bound as the longest.
func notBackAsMax(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(ds))
	for _, d := range ds {
		if d < 0 {
			d = time.Duration(math.MaxInt64)
		}
		out = append(out, d)
	}
	return out
}

func medianFloat(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// stormRatios are a result's storm CPU ratios, each and their median (a
// storm the fleet did not recover from counts as the highest).
func stormRatios(r *result) (each, median string) {
	if len(r.stormCPU) == 0 {
		return "–", "–"
	}
	var texts []string
	var rs []float64
	for _, c := range r.stormCPU {
		x := cpuRatio(c, r.connectCPU)
		texts = append(texts, fmtRatio(x))
		if x < 0 {
			x = math.Inf(1)
		}
		rs = append(rs, x)
	}
	slices.Sort(rs)
	m := rs[len(rs)/2]
	if math.IsInf(m, 1) {
		return strings.Join(texts, ", "), "–"
	}
	return strings.Join(texts, ", "), fmtRatio(m)
}

// curvesText names the key exchanges the fleet and ping offer.
func curvesText(goCurves bool) string {
	if goCurves {
		return "Go's defaults (X25519MLKEM768 first; --tls-go-curves)"
	}
	names := make([]string, len(fleet.GoChoriaCurves))
	for i, c := range fleet.GoChoriaCurves {
		names[i] = strings.Replace(c.String(), "CurveP", "P-", 1)
	}
	return "go-choria's (" + strings.Join(names, ", ") + ")"
}

// chart draws nodes connected over time in the first storm of the largest
// RSA 2048 fleet, one line per broker, as SVG.
func chart(o options, results []*result) string {
	var pick []*result
	size := 0
	for _, r := range results {
		if r.rsaBits == 2048 && r.err == nil && r.nodes > size {
			size = r.nodes
		}
	}
	for _, r := range results {
		if r.rsaBits == 2048 && r.err == nil && r.nodes == size {
			pick = append(pick, r)
		}
	}
	const w, h, left, bottom = 720.0, 360.0, 60.0, 40.0
	maxT := 10.0
	for _, r := range pick {
		for _, p := range r.timeline {
			maxT = math.Max(maxT, p.at.Seconds())
		}
	}
	x := func(t float64) float64 { return left + (w-left-20)*t/maxT }
	y := func(n int) float64 { return h - bottom - (h-bottom-20)*float64(n)/float64(max(size, 1)) }
	colors := []string{"#1f77b4", "#d62728", "#2ca02c"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="14">Nodes connected after a broker restart (%d nodes, RSA 2048)</text>`+"\n", left, size)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/><line x1="%.0f" y1="20" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, h-bottom, w-20, h-bottom, left, left, h-bottom)
	for i := 0; i <= 4; i++ {
		n := size * i / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%d</text>`+"\n", left-4, y(n)+4, n)
		t := maxT * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%.0f s</text>`+"\n", x(t), h-bottom+16, t)
	}
	for i, r := range pick {
		var pts []string
		for _, p := range r.timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.at.Seconds()), y(p.connected)))
		}
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", w-200, 40+16*float64(i), c, r.label(o.rounds))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func localIPs() []net.IP { return []net.IP{net.ParseIP("127.0.0.1")} }
