// Command streams compares Choria Streams on choria-broker with stock
// nats-server's JetStream, configured alike (mutual TLS with the same
// certificates, a file store), in the same run: KV put and get latency and
// throughput, a fleet of nodes polling a KV key as go-choria's KV watcher
// does, and the broker's RSS. Every broker is a real process on loopback.
//
//	go run ./bench/streams
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/bench/internal/harness"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
)

type options struct {
	bin, stock       string
	brokers          []string
	ops              int           // sequential puts and gets timed one by one
	window           time.Duration // throughput window for puts and for gets
	workers          int           // concurrent clients in the throughput windows
	nodes            int           // polling connections
	poll, pollFor    time.Duration // poll interval and how long the poll load runs
	keys, valueBytes int
}

func main() {
	var o options
	var brokers string
	flag.StringVar(&brokers, "brokers", "choria-broker,nats-server", "brokers to compare")
	flag.StringVar(&o.bin, "bin", "", "choria-broker binary (default: build one)")
	flag.StringVar(&o.stock, "nats-server", "nats-server", "stock nats-server binary (.ci/install-deps.sh installs the engine's version)")
	flag.IntVar(&o.ops, "ops", 2000, "puts, then gets, timed one at a time")
	flag.DurationVar(&o.window, "window", 5*time.Second, "how long each throughput run lasts")
	flag.IntVar(&o.workers, "workers", 8, "concurrent clients in the throughput runs")
	flag.IntVar(&o.nodes, "nodes", 1000, "node connections polling a KV key")
	flag.DurationVar(&o.poll, "poll", 5*time.Second, "each node's poll interval")
	flag.DurationVar(&o.pollFor, "poll-for", 20*time.Second, "how long the poll load runs")
	flag.IntVar(&o.keys, "keys", 100, "keys in the bucket")
	flag.IntVar(&o.valueBytes, "value-bytes", 128, "value size")
	flag.Parse()
	o.brokers = strings.Split(brokers, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/streams:", err)
		os.Exit(1)
	}
}

type result struct {
	broker                 string
	putP50, putP99         time.Duration
	getP50, getP99         time.Duration
	putRate, getRate       float64
	pollP50, pollP99       time.Duration
	polls, pollErrs        int
	pollCPU                float64 // broker CPU seconds per second of the poll load
	rssIdle, rssEnd        int64   // KiB: Streams on and idle; after the runs
	nodesConnected         int
	connectTime            time.Duration
	putErrs, getErrs       int
	putCount, getCount     int
	putRateErrs, getRateEr int
}

func run(o options) error {
	raiseNoFile()
	dir, err := os.MkdirTemp("", "bench-streams")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if slices.Contains(o.brokers, "choria-broker") {
		if o.bin, err = harness.Build(dir, o.bin); err != nil {
			return err
		}
	}
	if slices.Contains(o.brokers, "nats-server") {
		if o.stock, err = exec.LookPath(o.stock); err != nil {
			return fmt.Errorf("stock nats-server not found (%v); .ci/install-deps.sh installs it, or drop it with --brokers choria-broker", err)
		}
	}
	env, err := devenv.Prepare(filepath.Join(dir, "dev"), devenv.Options{ClientPort: 1, StatsOff: true})
	if err != nil {
		return err
	}
	brokerKP, err := env.PKI.CA.Issue(pki.IssueOptions{Name: "broker.bench.example.net", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return err
	}
	cert, key := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	if err := brokerKP.Save(cert, key); err != nil {
		return err
	}
	// privileged: per-role JetStream rights are not what is measured
	clientKP, err := env.PKI.CA.Issue(pki.IssueOptions{Name: "admin.privileged.mcollective", KeyType: "ec"})
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.PKI.CA.Cert)
	tc := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*clientKP.TLS()}, MinVersion: tls.VersionTLS12}

	var results []*result
	for _, b := range o.brokers {
		r, err := measure(o, dir, b, cert, key, env, tc)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		results = append(results, r)
	}
	report(o, results)
	return nil
}

// start runs one broker with Streams on a fresh store and returns its URL.
func start(o options, dir, broker, cert, key string, env *devenv.Env) (*harness.Proc, string, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	store := filepath.Join(dir, broker+"-store")
	var p *harness.Proc
	if broker == "nats-server" {
		conf := filepath.Join(dir, "stock.conf")
		text := fmt.Sprintf(`listen: 127.0.0.1:%d
max_connections: 100000
tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}
jetstream {
  store_dir: %q
}
`, port, cert, key, env.PKI.CAFile(), store)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, "", err
		}
		p, err = harness.Start(filepath.Join(dir, "stock.log"), o.stock, "-c", conf)
	} else {
		conf := filepath.Join(dir, "broker.conf")
		text := fmt.Sprintf(`identity = broker.bench.example.net
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
plugin.choria.network.stream.store = %s
`, port, cert, key, env.PKI.CAFile(), env.PKI.CRLFile(), store)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, "", err
		}
		p, err = harness.Start(filepath.Join(dir, "broker.log"), o.bin, "run", "--config", conf)
	}
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := harness.WaitPort(addr, 30*time.Second); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, "nats://" + addr, nil
}

func measure(o options, dir, broker, cert, key string, env *devenv.Env, tc *tls.Config) (*result, error) {
	p, url, err := start(o, dir, broker, cert, key, env)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	r := &result{broker: broker}
	connect := func() (*nats.Conn, jetstream.JetStream, error) {
		nc, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc)
		return nc, js, err
	}
	nc, js, err := connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// go-choria's KV buckets: file storage, direct get on (nats.go's default)
	var kv jetstream.KeyValue
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		kv, err = js.CreateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "B", History: 1})
		ccancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("create bucket: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the standard streams settle
	r.rssIdle = p.Usage().RSSKiB
	value := make([]byte, o.valueBytes)
	keyOf := func(i int) string { return fmt.Sprintf("node%d.setting", i%o.keys) }

	// latency, one at a time
	var lat []time.Duration
	for i := range o.ops {
		t0 := time.Now()
		if _, err := kv.Put(ctx, keyOf(i), value); err != nil {
			r.putErrs++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	r.putP50, r.putP99, r.putCount = pct(lat, 50), pct(lat, 99), len(lat)
	lat = lat[:0]
	for i := range o.ops {
		t0 := time.Now()
		if _, err := kv.Get(ctx, keyOf(i)); err != nil {
			r.getErrs++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
	r.getP50, r.getP99, r.getCount = pct(lat, 50), pct(lat, 99), len(lat)

	// throughput: workers, each on its own connection, for a window
	rate := func(op func(kv jetstream.KeyValue, i int) error) (float64, int, error) {
		var n, errs atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(o.window)
		for w := range o.workers {
			wnc, wjs, err := connect()
			if err != nil {
				return 0, 0, err
			}
			defer wnc.Close()
			wkv, err := wjs.KeyValue(ctx, "B")
			if err != nil {
				return 0, 0, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Now().Before(end); i += o.workers {
					if op(wkv, i) != nil {
						errs.Add(1)
					} else {
						n.Add(1)
					}
				}
			}()
		}
		begin := time.Now()
		wg.Wait()
		return float64(n.Load()) / time.Since(begin).Seconds(), int(errs.Load()), nil
	}
	if r.putRate, r.putRateErrs, err = rate(func(kv jetstream.KeyValue, i int) error { _, err := kv.Put(ctx, keyOf(i), value); return err }); err != nil {
		return nil, err
	}
	if r.getRate, r.getRateEr, err = rate(func(kv jetstream.KeyValue, i int) error { _, err := kv.Get(ctx, keyOf(i)); return err }); err != nil {
		return nil, err
	}

	if err := pollLoad(o, url, tc, p, r); err != nil {
		return nil, err
	}
	r.rssEnd = p.Usage().RSSKiB
	return r, nil
}

// pollLoad connects o.nodes nodes, each asking for its key's last value
// with a direct get every o.poll (go-choria's KV watcher's poll), and
// times the replies and the broker's CPU while they poll.
func pollLoad(o options, url string, tc *tls.Config, p *harness.Proc, r *result) error {
	conns := make([]*nats.Conn, o.nodes)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	begin := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	var failed atomic.Int64
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(10*time.Second), nats.MaxReconnects(-1))
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	r.connectTime = time.Since(begin)
	r.nodesConnected = o.nodes - int(failed.Load())
	time.Sleep(time.Second)

	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	cpu0 := p.Usage().CPU
	start := time.Now()
	end := start.Add(o.pollFor)
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := fmt.Sprintf("$JS.API.DIRECT.GET.KV_B.$KV.B.node%d.setting", i%o.keys)
			// nodes start their timers at different moments
			t := time.NewTimer(time.Duration(rand.Int64N(int64(o.poll))))
			defer t.Stop()
			for {
				<-t.C
				if time.Now().After(end) {
					return
				}
				t0 := time.Now()
				m, err := c.Request(subject, nil, 5*time.Second)
				d := time.Since(t0)
				if err != nil || m.Header.Get("Nats-Sequence") == "" {
					errs.Add(1)
				} else {
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
				t.Reset(o.poll)
			}
		}()
	}
	wg.Wait()
	r.pollCPU = (p.Usage().CPU - cpu0).Seconds() / time.Since(start).Seconds()
	r.pollP50, r.pollP99, r.polls, r.pollErrs = pct(lat, 50), pct(lat, 99), len(lat), int(errs.Load())
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func report(o options, rs []*result) {
	fmt.Printf("## Choria Streams against stock nats-server JetStream (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("Machine: %d cores shared by the broker and the benchmark's clients; loopback only; mutual TLS, file store, R1.\n", harness.Cores())
	fmt.Printf("Command: `go run ./bench/streams --ops %d --window %s --workers %d --nodes %d --poll %s --poll-for %s`\n\n", o.ops, o.window, o.workers, o.nodes, o.poll, o.pollFor)
	fmt.Printf("KV bucket B (history 1, direct get), %d keys, %d-byte values. Latency: %d puts then %d gets one at a time on one connection; throughput: %d connections for %s.\n",
		o.keys, o.valueBytes, o.ops, o.ops, o.workers, o.window)
	fmt.Printf("Poll load: %d node connections, each a `$JS.API.DIRECT.GET.KV_B.$KV.B.<key>` request every %s for %s (go-choria's KV watcher poll); CPU is the broker's CPU seconds per second meanwhile.\n\n", o.nodes, o.poll, o.pollFor)
	fmt.Println("| broker | put p50 | put p99 | put/s | get p50 | get p99 | get/s | nodes | poll p50 | poll p99 | polls (errors) | broker CPU while polling | RSS idle, Streams on (MiB) | RSS after (MiB) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Printf("| %s | %s | %s | %.0f | %s | %s | %.0f | %d | %s | %s | %d (%d) | %.0f%% | %.0f | %.0f |\n", r.broker,
			us(r.putP50), us(r.putP99), r.putRate, us(r.getP50), us(r.getP99), r.getRate, r.nodesConnected,
			us(r.pollP50), us(r.pollP99), r.polls, r.pollErrs, 100*r.pollCPU, float64(r.rssIdle)/1024, float64(r.rssEnd)/1024)
		if n := r.putErrs + r.getErrs + r.putRateErrs + r.getRateEr; n > 0 {
			fmt.Printf("\n%s: %d put and get errors\n", r.broker, n)
		}
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// raiseNoFile lifts the open-file limit to its hard limit: the node
// connections need one descriptor each on both sides.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
