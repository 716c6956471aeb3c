// Command cluster compares a 3-member cluster with a single broker under
// the same emulated fleet: broker memory, connect time and ping times.
// Every process is the real choria-broker binary; all run on loopback.
//
//	go run ./bench/cluster --nodes 3000 --pings 20
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/bench/internal/harness"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
)

func main() {
	nodes := flag.Int("nodes", 3000, "emulated nodes")
	pings := flag.Int("pings", 20, "pings per setup")
	bin := flag.String("bin", "", "choria-broker binary (default: build one)")
	flag.Parse()
	if err := run(*nodes, *pings, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster:", err)
		os.Exit(1)
	}
}

type result struct {
	name              string
	brokers           int
	connect           time.Duration
	rssKiB            []int64 // per broker, after the pings
	cpu               []float64
	p50, p99          []time.Duration
	replies, expected int
}

func run(nodes, pings int, bin string) error {
	dir, err := os.MkdirTemp("", "bench-cluster")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin, err = harness.Build(dir, bin); err != nil {
		return err
	}
	env, err := devenv.Prepare(filepath.Join(dir, "dev"), devenv.Options{ClientPort: freePort()})
	if err != nil {
		return err
	}
	fmt.Printf("# Cluster against single broker, %d emulated nodes, %d pings each\n\n", nodes, pings)
	fmt.Printf("Machine: %d cores shared by the brokers, the fleet and the ping client; loopback only.\n", harness.Cores())
	fmt.Printf("Command: go run ./bench/cluster --nodes %d --pings %d\n\n", nodes, pings)
	var results []*result
	for _, n := range []int{1, 3} {
		r, err := measure(dir, bin, env, n, nodes, pings)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Println("| setup | connect | broker RSS (MiB, each) | total RSS (MiB) | broker CPU s (each) | ping p50 (median of runs) | ping p99 (median) | replies |")
	fmt.Println("|---|---:|---|---:|---|---:|---:|---:|")
	for _, r := range results {
		var each []string
		var total int64
		for _, k := range r.rssKiB {
			each = append(each, fmt.Sprintf("%.0f", float64(k)/1024))
			total += k
		}
		var cpu []string
		for _, c := range r.cpu {
			cpu = append(cpu, fmt.Sprintf("%.1f", c))
		}
		fmt.Printf("| %s | %s | %s | %.0f | %s | %s | %s | %d/%d |\n", r.name, r.connect.Round(10*time.Millisecond), strings.Join(each, ", "),
			float64(total)/1024, strings.Join(cpu, ", "), harness.Median(r.p50).Round(time.Millisecond), harness.Median(r.p99).Round(time.Millisecond), r.replies, r.expected)
	}
	return nil
}

// measure starts n brokers, the fleet and the pings, and stops them all.
func measure(dir, bin string, env *devenv.Env, n, nodes, pings int) (*result, error) {
	confs, clientURLs, err := writeConfigs(dir, env, n)
	if err != nil {
		return nil, err
	}
	var procs []*harness.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for i, c := range confs {
		p, err := harness.Start(filepath.Join(dir, fmt.Sprintf("broker-%d-%d.log", n, i)), bin, "run", "--config", c)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, u := range clientURLs {
		if err := harness.WaitPort(strings.TrimPrefix(u, "nats://"), 30*time.Second); err != nil {
			return nil, err
		}
	}
	time.Sleep(2 * time.Second) // routes
	r := &result{name: fmt.Sprintf("%d broker(s)", n), brokers: n}
	begin := time.Now()
	emu, err := harness.Start(filepath.Join(dir, fmt.Sprintf("emulate-%d.log", n)), bin, "emulate", "--dev", "--dev-dir", env.Dir, "--nodes", strconv.Itoa(nodes), "--server", strings.Join(clientURLs, ","))
	if err != nil {
		return nil, err
	}
	defer emu.Stop()
	if _, err := emu.WaitLine(fmt.Sprintf("all %d nodes connected", nodes), 10*time.Minute); err != nil {
		return nil, err
	}
	r.connect = time.Since(begin)
	r.expected = nodes
	for i := 0; i < pings; i++ {
		p, err := harness.Ping(bin, "--dev", "--dev-dir", env.Dir, "--server", clientURLs[0], "--expect", strconv.Itoa(nodes), "--timeout", "30s")
		if err != nil {
			return nil, err
		}
		r.p50, r.p99 = append(r.p50, p.P50), append(r.p99, p.P99)
		r.replies = min(r.replies, p.Count)
		if i == 0 {
			r.replies = p.Count
		}
	}
	for _, p := range procs {
		u := p.Usage()
		r.rssKiB, r.cpu = append(r.rssKiB, u.RSSKiB), append(r.cpu, u.CPU.Seconds())
	}
	return r, nil
}

func writeConfigs(dir string, env *devenv.Env, n int) (confs, urls []string, err error) {
	var peers []string
	peerPorts := make([]int, n)
	for i := range peerPorts {
		peerPorts[i] = freePort()
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", peerPorts[i]))
	}
	for i := range n {
		name := fmt.Sprintf("bench%d.example.net", i+1)
		kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
		if err != nil {
			return nil, nil, err
		}
		certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if err := kp.Save(certFile, keyFile); err != nil {
			return nil, nil, err
		}
		port := freePort()
		text := fmt.Sprintf(`identity = %s
loglevel = warn
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
plugin.choria.network.public_url = 127.0.0.1:%d
plugin.choria.stats_port = 0
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.security.file.crl = %s
`, name, port, port, certFile, keyFile, env.PKI.CAFile(), env.PKI.CRLFile())
		if n > 1 {
			text += fmt.Sprintf("plugin.choria.network.peers = %s\nplugin.choria.network.peer_port = %d\nplugin.choria.network.peer_password = bench\n", strings.Join(peers, ","), peerPorts[i])
		}
		conf := filepath.Join(dir, fmt.Sprintf("%s-%d.conf", name, n))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, nil, err
		}
		confs, urls = append(confs, conf), append(urls, fmt.Sprintf("nats://127.0.0.1:%d", port))
	}
	return confs, urls, nil
}

// freePort is harness.FreePort for callers that cannot go on without one.
func freePort() int {
	p, err := harness.FreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster: no free port:", err)
		os.Exit(1)
	}
	return p
}
