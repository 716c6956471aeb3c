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
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/federation"
	"github.com/choria-broker/choria-broker/internal/pki"
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
	name string
	cmd  *exec.Cmd
	out  *bufio.Reader
	log  string
	cpu0 float64
}

type result struct {
	name                string
	procs               []*proc
	cpuPerPing          []float64 // seconds, per process, discovery pings only
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
	if bin == "" {
		bin = filepath.Join(dir, "choria-broker")
		build := exec.Command("go", "build", "-o", bin, "./cmd/choria-broker")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env, err := devenv.Prepare(filepath.Join(dir, "dev"), devenv.Options{ClientPort: freePort()})
	if err != nil {
		return err
	}
	fmt.Printf("# Federated against direct ping, 2 × %d emulated nodes, %d pings each\n\n", nodes, pings)
	fmt.Printf("Machine: %d cores shared by every broker, the fleet and the ping client; loopback only.\n", numCPU())
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
		var total float64
		for i, c := range r.cpuPerPing {
			each = append(each, fmt.Sprintf("%s %.0f", r.procs[i].name, c*1000))
			total += c
		}
		fmt.Printf("| %s | %d/%d | %s | %s | %s | %s | %.0f | %d/%d, %s |\n", r.name, r.replies, r.expected,
			median(r.p50).Round(time.Millisecond), median(r.p99).Round(time.Millisecond), median(r.elapsed).Round(time.Millisecond),
			strings.Join(each, ", "), total*1000, r.rpcReplies, r.rpcWant, median(r.rpcElapsed).Round(time.Millisecond))
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &result{name: "direct (1 broker)", expected: 2 * nodes, rpcWant: 2 * nodes}
	var all []*proc
	defer func() {
		for _, p := range all {
			stop(p.cmd)
		}
	}()
	startProc := func(name string, exe string, args ...string) (*proc, error) {
		logFile := filepath.Join(dir, strings.ReplaceAll(r.name+"-"+name, " ", "_")+".log")
		cmd, out, err := start(ctx, exe, logFile, args...)
		if err != nil {
			return nil, err
		}
		p := &proc{name: name, cmd: cmd, out: out, log: logFile}
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
		return url, waitPort(strings.TrimPrefix(url, "nats://"), 30*time.Second)
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
			if err := waitLine(p.out, "federation broker ready", time.Minute, false); err != nil {
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
		if err := waitLine(p.out, fmt.Sprintf("all %d nodes connected", nodes), 10*time.Minute, true); err != nil {
			return nil, err
		}
	}
	ping := func(extra ...string) (count int, p50, p99, elapsed time.Duration, rpcOK int, err error) {
		args := []string{"ping", "--dev", "--dev-dir", env.Dir, "--server", clientURL, "--expect", strconv.Itoa(2 * nodes), "--timeout", "30s", "--json"}
		if len(federations) > 0 {
			args = append(args, "--federations", strings.Join(federations, ","))
		}
		data, err := exec.Command(bin, append(args, extra...)...).Output()
		if err != nil && len(data) == 0 {
			return 0, 0, 0, 0, 0, fmt.Errorf("ping: %w", err)
		}
		var out struct {
			Count  int           `json:"count"`
			P50    time.Duration `json:"p50_ns"`
			P99    time.Duration `json:"p99_ns"`
			Result struct {
				Elapsed   time.Duration `json:"elapsed_ns"`
				Responses []struct {
					StatusCode *int `json:"statuscode"`
				} `json:"responses"`
			} `json:"result"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			return 0, 0, 0, 0, 0, fmt.Errorf("ping output: %w", err)
		}
		for _, x := range out.Result.Responses {
			if x.StatusCode != nil && *x.StatusCode == 0 {
				rpcOK++
			}
		}
		return out.Count, out.P50, out.P99, out.Result.Elapsed, rpcOK, nil
	}
	// One ping to warm up every path (first TLS sessions, subscriptions).
	if _, _, _, _, _, err := ping(); err != nil {
		return nil, err
	}
	for _, p := range r.procs {
		_, p.cpu0 = procStats(p.cmd.Process.Pid)
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
		_, cpu := procStats(p.cmd.Process.Pid)
		r.cpuPerPing = append(r.cpuPerPing, (cpu-p.cpu0)/float64(pings))
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
		stop(p.cmd)
		// The line is written at exit; give the output copy a moment.
		for i := 0; i < 50; i++ {
			data, _ := os.ReadFile(p.log)
			if at := strings.Index(string(data), "counters "); at >= 0 {
				line, _, _ := strings.Cut(string(data[at:]), "\n")
				r.counters = append(r.counters, p.name+" "+line)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return r, nil
}

// brokerConfig writes a network broker's configuration with a certificate of its own.
func brokerConfig(dir string, env *devenv.Env, name string) (conf, url string, err error) {
	certFile, keyFile, err := issue(dir, env, name+".bench.example.net")
	if err != nil {
		return "", "", err
	}
	port := freePort()
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
	certFile, keyFile, err := issue(dir, env, name)
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

func issue(dir string, env *devenv.Env, name string) (certFile, keyFile string, err error) {
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return "", "", err
	}
	key, err := pki.KeyPEM(kp.Key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := pki.WriteFile(certFile, pki.CertsPEM(kp.Chain...), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, pki.WriteFile(keyFile, key, 0o600)
}

// start runs a program with its output in a log file and on a pipe.
func start(ctx context.Context, exe, logFile string, args ...string) (*exec.Cmd, *bufio.Reader, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(f, pw), io.MultiWriter(f, pw)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		f.Close()
	}()
	return cmd, bufio.NewReader(pr), nil
}

func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// waitLine reads output until a line contains text. The rest is drained
// in the background so that the process never blocks on its pipe.
func waitLine(r *bufio.Reader, text string, limit time.Duration, echo bool) error {
	found := make(chan error, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if echo && line != "" {
				fmt.Fprint(os.Stderr, line)
			}
			if strings.Contains(line, text) {
				found <- nil
				_, _ = io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				found <- fmt.Errorf("output ended before %q", text)
				return
			}
		}
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(limit):
		return fmt.Errorf("no %q within %s", text, limit)
	}
}

func waitPort(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New(addr + " did not open")
}

// procStats reads a process's RSS (KiB) and CPU seconds from /proc.
func procStats(pid int) (int64, float64) {
	var rss int64
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rss, _ = strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			}
		}
	}
	var cpu float64
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		cpu = (ut + st) / 100 // USER_HZ
	}
	return rss, cpu
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}
