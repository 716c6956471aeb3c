// Command federation compares a federated ping of two collectives with a
// direct ping of the same nodes on one broker: ping p50/p99 and the CPU
// each broker process spends per ping. Network brokers and the fleet are
// the real choria-broker binary; federation brokers are this program
// re-run as `federation-broker` (until `choria-broker run` starts them).
// Everything runs on loopback.
//
//	go run ./bench/federation --nodes 5000 --pings 20
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/bench/internal/harness"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/federation"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "federation-broker" {
		if err := federationBroker(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "federation-broker:", err)
			os.Exit(1)
		}
		return
	}
	nodes := flag.Int("nodes", 5000, "emulated nodes per collective (two collectives)")
	pings := flag.Int("pings", 20, "pings per setup")
	rpc := flag.Int("rpc", 3, "pings with --rpc per setup (rpcutil ping to every node, direct requests)")
	bin := flag.String("bin", "", "choria-broker binary (default: build one)")
	flag.Parse()
	if err := run(*nodes, *pings, *rpc, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/federation:", err)
		os.Exit(1)
	}
}

// federationBroker runs one federation broker until SIGTERM and then
// prints its message counters, for the report.
func federationBroker(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := federation.New(cfg, log, reg)
	if err != nil {
		return err
	}
	if path := os.Getenv("FEDBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + cfg.Federation.Cluster)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-b.Ready():
			fmt.Println("federation broker ready")
		case <-ctx.Done():
		}
	}()
	if err := b.Run(ctx); err != nil {
		return err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	totals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				totals[mf.GetName()] += m.GetCounter().GetValue()
			}
		}
	}
	fmt.Printf("counters published=%.0f errors=%.0f dropped=%.0f\n", totals["choria_federation_published_msgs"], totals["choria_federation_errors"], totals["choria_federation_dropped_msgs"])
	return nil
}

type proc struct {
	*harness.Proc
	name string
	log  string
	cpu0 time.Duration
}

type result struct {
	name                string
	procs               []*proc
	cpuPerPing          []time.Duration // per process, discovery pings only
	p50, p99, elapsed   []time.Duration
	replies, expected   int
	rpcElapsed          []time.Duration
	rpcReplies, rpcWant int
	counters            []string
}

func run(nodes, pings, rpc int, bin string) error {
	dir, err := os.MkdirTemp("", "bench-federation")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	}
	if bin, err = harness.Build(dir, bin); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	port, err := harness.FreePort()
	if err != nil {
		return err
	}
	env, err := devenv.Prepare(filepath.Join(dir, "dev"), devenv.Options{ClientPort: port})
	if err != nil {
		return err
	}
	fmt.Printf("# Federated against direct ping, 2 × %d emulated nodes, %d pings each\n\n", nodes, pings)
	fmt.Printf("Machine: %d cores shared by every broker, the fleet and the ping client; loopback only.\n", harness.Cores())
	fmt.Printf("Command: go run ./bench/federation --nodes %d --pings %d --rpc %d\n\n", nodes, pings, rpc)
	var results []*result
	for _, federated := range []bool{false, true} {
		r, err := measure(dir, bin, self, env, federated, nodes, pings, rpc)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Println("| setup | replies | ping p50 (median of runs) | ping p99 (median) | ping elapsed (median) | broker CPU ms per ping (each process) | total broker CPU ms per ping | rpc: replies, elapsed (median) |")
	fmt.Println("|---|---:|---:|---:|---:|---|---:|---|")
	for _, r := range results {
		var each []string
		var total time.Duration
		for i, c := range r.cpuPerPing {
			each = append(each, fmt.Sprintf("%s %d", r.procs[i].name, c.Round(time.Millisecond).Milliseconds()))
			total += c
		}
		fmt.Printf("| %s | %d/%d | %s | %s | %s | %s | %d | %d/%d, %s |\n", r.name, r.replies, r.expected,
			harness.Median(r.p50).Round(time.Millisecond), harness.Median(r.p99).Round(time.Millisecond), harness.Median(r.elapsed).Round(time.Millisecond),
			strings.Join(each, ", "), total.Round(time.Millisecond).Milliseconds(), r.rpcReplies, r.rpcWant, harness.Median(r.rpcElapsed).Round(time.Millisecond))
	}
	for _, r := range results {
		for _, c := range r.counters {
			fmt.Printf("\n%s: %s", r.name, c)
		}
	}
	fmt.Println()
	return nil
}

// measure starts the brokers of a setup, two fleets and the pings, and
// stops them all.
func measure(dir, bin, self string, env *devenv.Env, federated bool, nodes, pings, rpc int) (*result, error) {
	r := &result{name: "direct (1 broker)", expected: 2 * nodes, rpcWant: 2 * nodes}
	var all []*proc
	defer func() {
		for _, p := range all {
			p.Stop()
		}
	}()
	startProc := func(name string, exe string, args ...string) (*proc, error) {
		logFile := filepath.Join(dir, strings.ReplaceAll(r.name+"-"+name, " ", "_")+".log")
		hp, err := harness.Start(logFile, exe, args...)
		if err != nil {
			return nil, err
		}
		p := &proc{Proc: hp, name: name, log: logFile}
		all = append(all, p)
		return p, nil
	}
	network := func(name string) (string, error) {
		conf, url, err := brokerConfig(dir, env, name)
		if err != nil {
			return "", err
		}
		p, err := startProc(name, bin, "run", "--config", conf)
		if err != nil {
			return "", err
		}
		r.procs = append(r.procs, p)
		return url, harness.WaitPort(strings.TrimPrefix(url, "nats://"), 30*time.Second)
	}

	var clientURL string
	fleetURL := map[string]string{}
	var federations []string
	if !federated {
		u, err := network("broker")
		if err != nil {
			return nil, err
		}
		clientURL, fleetURL["a"], fleetURL["b"] = u, u, u
	} else {
		r.name = "federated (3 brokers + 2 federation brokers)"
		federations = []string{"a", "b"}
		var err error
		if clientURL, err = network("fed"); err != nil {
			return nil, err
		}
		for _, c := range federations {
			if fleetURL[c], err = network(c); err != nil {
				return nil, err
			}
		}
		for _, c := range federations {
			conf, err := federationConfig(dir, env, c, clientURL, fleetURL[c])
			if err != nil {
				return nil, err
			}
			p, err := startProc("fed-"+c, self, "federation-broker", conf)
			if err != nil {
				return nil, err
			}
			if _, err := p.WaitLine("federation broker ready", time.Minute); err != nil {
				return nil, fmt.Errorf("federation broker %s: %w", c, err)
			}
			r.procs = append(r.procs, p)
		}
	}
	for _, c := range []string{"a", "b"} {
		p, err := startProc("fleet-"+c, bin, "emulate", "--dev", "--dev-dir", env.Dir, "--nodes", strconv.Itoa(nodes), "--identity", c+"-%d.example.net", "--server", fleetURL[c])
		if err != nil {
			return nil, err
		}
		p.Watch(func(l harness.Line) { fmt.Fprintln(os.Stderr, l.Text) })
		if _, err := p.WaitLine(fmt.Sprintf("all %d nodes connected", nodes), 10*time.Minute); err != nil {
			return nil, err
		}
	}
	ping := func(extra ...string) (count int, p50, p99, elapsed time.Duration, rpcOK int, err error) {
		args := []string{"--dev", "--dev-dir", env.Dir, "--server", clientURL, "--expect", strconv.Itoa(2 * nodes), "--timeout", "30s"}
		if len(federations) > 0 {
			args = append(args, "--federations", strings.Join(federations, ","))
		}
		out, err := harness.Ping(bin, append(args, extra...)...)
		if err != nil {
			return 0, 0, 0, 0, 0, err
		}
		return out.Count, out.P50, out.P99, out.Result.Elapsed, out.OK(), nil
	}
	// One ping to warm up every path (first TLS sessions, subscriptions).
	if _, _, _, _, _, err := ping(); err != nil {
		return nil, err
	}
	for _, p := range r.procs {
		p.cpu0 = p.Usage().CPU
	}
	r.replies = 2 * nodes
	for i := 0; i < pings; i++ {
		n, p50, p99, el, _, err := ping()
		if err != nil {
			return nil, err
		}
		r.p50, r.p99, r.elapsed = append(r.p50, p50), append(r.p99, p99), append(r.elapsed, el)
		r.replies = min(r.replies, n)
	}
	for _, p := range r.procs {
		r.cpuPerPing = append(r.cpuPerPing, (p.Usage().CPU-p.cpu0)/time.Duration(pings))
	}
	r.rpcReplies = 2 * nodes
	for i := 0; i < rpc; i++ {
		start := time.Now()
		_, _, _, _, ok, err := ping("--rpc")
		if err != nil {
			return nil, err
		}
		r.rpcElapsed = append(r.rpcElapsed, time.Since(start))
		r.rpcReplies = min(r.rpcReplies, ok)
	}
	for _, p := range r.procs {
		if !strings.HasPrefix(p.name, "fed-") {
			continue
		}
		p.Stop() // returns once the output, with the line written at exit, is in the log
		data, _ := os.ReadFile(p.log)
		if at := strings.Index(string(data), "counters "); at >= 0 {
			line, _, _ := strings.Cut(string(data[at:]), "\n")
			r.counters = append(r.counters, p.name+" "+line)
		}
	}
	return r, nil
}

// brokerConfig writes a network broker's configuration with a certificate of its own.
func brokerConfig(dir string, env *devenv.Env, name string) (conf, url string, err error) {
	certFile, keyFile, err := harness.IssueCert(dir, env, name+".bench.example.net")
	if err != nil {
		return "", "", err
	}
	port, err := harness.FreePort()
	if err != nil {
		return "", "", err
	}
	text := fmt.Sprintf(`identity = %s.bench.example.net
loglevel = warn
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
plugin.choria.network.federation_brokers = ^fed-[ab]\.bench\.example\.net$
plugin.choria.stats_port = 0
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.security.file.crl = %s
`, name, port, certFile, keyFile, env.PKI.CAFile(), env.PKI.CRLFile())
	conf = filepath.Join(dir, name+".conf")
	return conf, fmt.Sprintf("nats://127.0.0.1:%d", port), os.WriteFile(conf, []byte(text), 0o644)
}

// federationConfig is a federation broker's broker.conf, as an operator writes it.
func federationConfig(dir string, env *devenv.Env, cluster, fedURL, collURL string) (string, error) {
	name := "fed-" + cluster + ".bench.example.net"
	certFile, keyFile, err := harness.IssueCert(dir, env, name)
	if err != nil {
		return "", err
	}
	text := fmt.Sprintf(`identity = %s
plugin.choria.broker_federation = true
plugin.choria.federation.cluster = %s
plugin.choria.federation_middleware_hosts = %s
plugin.choria.middleware_hosts = %s
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
`, name, cluster, fedURL, collURL, certFile, keyFile, env.PKI.CAFile())
	conf := filepath.Join(dir, "fed-"+cluster+".conf")
	return conf, os.WriteFile(conf, []byte(text), 0o644)
}
