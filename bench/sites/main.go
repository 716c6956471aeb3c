// Command sites pings one fleet split over two sites, joined three ways:
// a gateway between two single-broker clusters, a leafnode from the
// second site's broker to the first's, and federation brokers between two
// collectives. It reports ping p50/p99, the CPU every broker process
// spends per ping and the brokers' total RSS, each setup in turn, in one
// run. Brokers, federation brokers and the fleet are the real
// choria-broker binary (`run`, `emulate`, `ping`); everything is loopback.
//
//	go run ./bench/sites --nodes 5000 --pings 20
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/bench/internal/harness"
	"github.com/choria-broker/choria-broker/internal/devenv"
)

func main() {
	nodes := flag.Int("nodes", 5000, "emulated nodes in all, half on each site")
	pings := flag.Int("pings", 20, "pings per setup")
	setups := flag.String("setups", "direct,gateway,leafnode,federation", "setups to measure, in order")
	bin := flag.String("bin", "", "choria-broker binary (default: build one)")
	keep := flag.Bool("keep", false, "keep the working directory (configurations and logs) and print where it is")
	flag.Parse()
	if err := run(*nodes, *pings, strings.Split(*setups, ","), *bin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sites:", err)
		os.Exit(1)
	}
}

// site is one broker process of a setup.
type site struct {
	name  string
	extra string // broker.conf lines beyond the common ones
	port  int    // client port
	proc  *harness.Proc
	cpu0  time.Duration
}

func (s *site) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

type result struct {
	setup             string
	brokers           int
	replies, expected int
	p50, p99          []time.Duration
	cpuPerPing        time.Duration // every broker process together
	rssKiB            int64         // every broker process together, after the pings
}

func run(nodes, pings int, setups []string, bin string, keep bool) error {
	dir, err := os.MkdirTemp("", "bench-sites")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if bin, err = harness.Build(dir, bin); err != nil {
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
	fmt.Printf("# One fleet of %d nodes over two sites: gateway, leafnode, federation (%d pings each)\n\n", nodes, pings)
	fmt.Printf("Machine: %d cores shared by every broker, the fleet and the ping client; loopback only.\n", harness.Cores())
	fmt.Printf("Command: go run ./bench/sites --nodes %d --pings %d --setups %s\n\n", nodes, pings, strings.Join(setups, ","))
	var results []*result
	for _, s := range setups {
		r, err := measure(dir, bin, env, strings.TrimSpace(s), nodes, pings)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r)
	}
	fmt.Println("| setup | broker processes | replies | ping p50 (median of pings) | ping p99 (median) | broker CPU ms per ping (all brokers) | broker RSS MiB (all brokers, after the pings) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Printf("| %s | %d | %d/%d | %s | %s | %.1f | %.0f |\n", r.setup, r.brokers, r.replies, r.expected,
			harness.Median(r.p50).Round(time.Millisecond), harness.Median(r.p99).Round(time.Millisecond),
			float64(r.cpuPerPing.Microseconds())/1000, float64(r.rssKiB)/1024)
	}
	return nil
}

// topology is a setup's brokers, which of them the client uses, where each
// half of the fleet connects, and the federations a ping names.
func topology(setup string) (sites []*site, client string, fleets [2]string, federations []string, err error) {
	ports := func(n int) ([]int, error) {
		var out []int
		for range n {
			p, err := harness.FreePort()
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	switch setup {
	case "direct":
		p, err := ports(1)
		if err != nil {
			return nil, "", fleets, nil, err
		}
		return []*site{{name: "a", port: p[0]}}, "a", [2]string{"a", "a"}, nil, nil
	case "gateway":
		p, err := ports(4) // client a, client b, gateway a, gateway b
		if err != nil {
			return nil, "", fleets, nil, err
		}
		gw := func(self, other string, own, remote int) string {
			return fmt.Sprintf("plugin.choria.network.gateway_name = SITE_%s\nplugin.choria.network.gateway_port = %d\nplugin.choria.network.gateway_remotes = SITE_%s\nplugin.choria.network.gateway_remote.SITE_%s.urls = 127.0.0.1:%d\n",
				strings.ToUpper(self), own, strings.ToUpper(other), strings.ToUpper(other), remote)
		}
		return []*site{
			{name: "a", port: p[0], extra: gw("a", "b", p[2], p[3])},
			{name: "b", port: p[1], extra: gw("b", "a", p[3], p[2])},
		}, "a", [2]string{"a", "b"}, nil, nil
	case "leafnode":
		p, err := ports(3) // client a (hub), client b (leaf), leafnode port of the hub
		if err != nil {
			return nil, "", fleets, nil, err
		}
		return []*site{
			{name: "a", port: p[0], extra: fmt.Sprintf("plugin.choria.network.leafnode_port = %d\nplugin.choria.network.leafnode_brokers = ^b\\.bench\\.example\\.net$\n", p[2])},
			{name: "b", port: p[1], extra: fmt.Sprintf("plugin.choria.network.gateway_name = SITE_B\nplugin.choria.network.leafnode_remotes = hub\nplugin.choria.network.leafnode_remote.hub.url = 127.0.0.1:%d\n", p[2])},
		}, "a", [2]string{"a", "b"}, nil, nil
	case "federation":
		p, err := ports(3) // federation network, collective a, collective b
		if err != nil {
			return nil, "", fleets, nil, err
		}
		fedBrokers := "plugin.choria.network.federation_brokers = ^fed-[ab]\\.bench\\.example\\.net$\n"
		sites = []*site{
			{name: "fed", port: p[0], extra: fedBrokers},
			{name: "a", port: p[1], extra: fedBrokers},
			{name: "b", port: p[2], extra: fedBrokers},
		}
		for i, c := range []string{"a", "b"} {
			sites = append(sites, &site{name: "fed-" + c, extra: fmt.Sprintf(
				"plugin.choria.broker_federation = true\nplugin.choria.federation.cluster = %s\nplugin.choria.federation_middleware_hosts = 127.0.0.1:%d\nplugin.choria.middleware_hosts = 127.0.0.1:%d\n",
				c, p[0], p[1+i])})
		}
		return sites, "fed", [2]string{"a", "b"}, []string{"a", "b"}, nil
	}
	return nil, "", fleets, nil, fmt.Errorf("unknown setup %q: want direct, gateway, leafnode or federation", setup)
}

// measure starts a setup's brokers and the two halves of the fleet, pings,
// and stops them all.
func measure(dir, bin string, env *devenv.Env, setup string, nodes, pings int) (*result, error) {
	sites, clientSite, fleets, federations, err := topology(setup)
	if err != nil {
		return nil, err
	}
	r := &result{setup: setup, brokers: len(sites), expected: nodes}
	var procs []*harness.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	byName := map[string]*site{}
	for _, s := range sites {
		byName[s.name] = s
		conf, err := writeConfig(dir, env, setup, s)
		if err != nil {
			return nil, err
		}
		p, err := harness.Start(filepath.Join(dir, setup+"-"+s.name+".log"), bin, "run", "--config", conf)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		s.proc = p
		if s.port != 0 {
			if err := harness.WaitPort(fmt.Sprintf("127.0.0.1:%d", s.port), 30*time.Second); err != nil {
				return nil, err
			}
		}
	}
	half := [2]int{nodes / 2, nodes - nodes/2}
	for i, c := range []string{"a", "b"} {
		p, err := harness.Start(filepath.Join(dir, setup+"-fleet-"+c+".log"), bin, "emulate", "--dev", "--dev-dir", env.Dir,
			"--nodes", strconv.Itoa(half[i]), "--identity", c+"-%d.example.net", "--server", byName[fleets[i]].url())
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		if _, err := p.WaitLine(fmt.Sprintf("all %d nodes connected", half[i]), 10*time.Minute); err != nil {
			return nil, fmt.Errorf("fleet %s: %w", c, err)
		}
	}
	ping := func() (*harness.PingResult, error) {
		args := []string{"--dev", "--dev-dir", env.Dir, "--server", byName[clientSite].url(), "--expect", strconv.Itoa(nodes), "--timeout", "30s"}
		if len(federations) > 0 {
			args = append(args, "--federations", strings.Join(federations, ","))
		}
		return harness.Ping(bin, args...)
	}
	// Links and federation brokers come up after their ports open: the
	// first full answer, within a minute, says the setup is ready and
	// warms every path.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := ping()
		if err == nil && out.Count >= nodes {
			break
		}
		if time.Now().After(deadline) {
			got := 0
			if out != nil {
				got = out.Count
			}
			return nil, fmt.Errorf("the first ping got %d of %d replies within a minute (%v); logs in %s", got, nodes, err, dir)
		}
		time.Sleep(time.Second)
	}
	for _, s := range sites {
		s.cpu0 = s.proc.Usage().CPU
	}
	r.replies = nodes
	for range pings {
		out, err := ping()
		if err != nil {
			return nil, err
		}
		r.p50, r.p99 = append(r.p50, out.P50), append(r.p99, out.P99)
		r.replies = min(r.replies, out.Count)
	}
	for _, s := range sites {
		u := s.proc.Usage()
		r.cpuPerPing += (u.CPU - s.cpu0) / time.Duration(max(pings, 1))
		r.rssKiB += u.RSSKiB
	}
	return r, nil
}

// writeConfig writes a broker's broker.conf with a certificate of its own,
// named <site>.bench.example.net.
func writeConfig(dir string, env *devenv.Env, setup string, s *site) (string, error) {
	name := s.name + ".bench.example.net"
	certFile, keyFile, err := harness.IssueCert(dir, env, name)
	if err != nil {
		return "", err
	}
	text := fmt.Sprintf(`identity = %s
loglevel = warn
plugin.choria.stats_port = 0
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.security.file.crl = %s
`, name, certFile, keyFile, env.PKI.CAFile(), env.PKI.CRLFile())
	if s.port != 0 { // a network broker; federation brokers have no port of their own
		text += fmt.Sprintf("plugin.choria.broker_network = true\nplugin.choria.network.listen_address = 127.0.0.1\nplugin.choria.network.client_port = %d\n", s.port)
	}
	text += s.extra
	conf := filepath.Join(dir, setup+"-"+s.name+".conf")
	return conf, os.WriteFile(conf, []byte(text), 0o644)
}
