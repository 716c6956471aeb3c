package preflight

import (
	"path/filepath"
	"strings"
	"testing"
)

// The three fixture hosts: tuned for 50 000 nodes, a stock install that
// gets by, and one with limits too low for the fleet.
func TestSystemChecks(t *testing.T) {
	t.Parallel()
	checks := []Check{somaxconn(), synBacklog(), synCookies(), fileMax(), nrOpen(), processNoFile{}, unitNoFile{}, memory{}}
	for host, want := range map[string]Status{"tuned": Pass, "stock": Warn, "low": Fail} {
		for _, c := range checks {
			t.Run(host+"/"+c.Name(), func(t *testing.T) {
				t.Parallel()
				r := one(t, c, hostEnv(t, host, nil))
				expect(t, r, want)
				if want != Pass && strings.HasPrefix(c.Name(), "kernel.") && r.Sysctl == "" {
					t.Errorf("no sysctl line for %s", c.Name())
				}
			})
		}
	}
}

func TestKernelValuesAndFixes(t *testing.T) {
	t.Parallel()
	r := one(t, synBacklog(), hostEnv(t, "low", nil))
	expect(t, r, Fail, "net.ipv4.tcp_max_syn_backlog = 512")
	if r.Sysctl != "net.ipv4.tcp_max_syn_backlog = 12500" || !strings.Contains(r.Fix, "sysctl -w net.ipv4.tcp_max_syn_backlog=12500") {
		t.Errorf("fix %q, sysctl %q", r.Fix, r.Sysctl)
	}
	// The seed's values are the floor for small fleets.
	env := hostEnv(t, "stock", nil)
	env.Nodes = 1000
	expect(t, one(t, somaxconn(), env), Pass)
	expect(t, one(t, synBacklog(), env), Pass)
	expect(t, one(t, fileMax(), hostEnv(t, "tuned", nil)), Pass, "fs.file-max = unlimited")
}

func TestSystemValuesUnreadable(t *testing.T) {
	t.Parallel()
	env := hostEnv(t, "none", nil)
	env.Sys = Host{Root: t.TempDir()}
	for _, c := range []Check{somaxconn(), synCookies(), processNoFile{}, memory{}} {
		expect(t, one(t, c, env), Warn, "cannot read")
	}
	expect(t, one(t, unitNoFile{}, env), Skip, "no choria-broker.service installed")
}

func TestProcessNoFileProjectsRaise(t *testing.T) {
	t.Parallel()
	// stock: soft 1024 here, but root raises it to max_connections + 1024.
	expect(t, one(t, processNoFile{}, hostEnv(t, "stock", nil)), Warn, "soft 1 024, hard 60 000", "the broker starts with 51 024")
	// low: not root, so the hard limit is the ceiling.
	r := one(t, processNoFile{}, hostEnv(t, "low", nil))
	expect(t, r, Fail, "the broker starts with 4 096")
	if !strings.Contains(r.Fix, "ulimit -Hn 101024") || !strings.Contains(r.Fix, "LimitNOFILE=101024") {
		t.Errorf("fix %q", r.Fix)
	}
	// A larger max_connections lets root raise it, but not past fs.nr_open (80 000).
	env := hostEnv(t, "stock", parse(t, "identity = b.example.net\nplugin.choria.network.max_connections = 79000\n"))
	expect(t, one(t, processNoFile{}, env), Warn, "starts with 60 000")
	env.Config.Network.MaxConnections = 78000
	expect(t, one(t, processNoFile{}, env), Warn, "starts with 79 024")
	env.Nodes = 30000
	expect(t, one(t, processNoFile{}, env), Pass)
}

func TestUnitNoFile(t *testing.T) {
	t.Parallel()
	expect(t, one(t, unitNoFile{}, hostEnv(t, "tuned", nil)), Pass, "LimitNOFILE=200000") // drop-in overrides the unit
	expect(t, one(t, unitNoFile{}, hostEnv(t, "stock", nil)), Warn, "not set")            // LimitNOFILE under [Install] does not count
	expect(t, one(t, unitNoFile{}, hostEnv(t, "low", nil)), Fail, "LimitNOFILE=1024:4096", "starts with 4 096")

	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/systemd/system/choria-broker.service"), "[Service]\nLimitNOFILE=lots\n")
	env := hostEnv(t, "tuned", nil)
	env.Sys = Host{Root: root}
	expect(t, one(t, unitNoFile{}, env), Fail, "not a number")

	writeFile(t, filepath.Join(root, "etc/systemd/system/choria-broker.service"), "[Service]\nUser=choria\nLimitNOFILE=infinity\n")
	expect(t, one(t, unitNoFile{}, env), Pass, "LimitNOFILE=infinity", "starts with 1 048 576")
}

func TestParseUnit(t *testing.T) {
	t.Parallel()
	u := parseUnit("[Service]\nLimitNOFILE=65536\n; comment\n[Service]\nLimitNOFILE=\nUser = broker\n")
	if u.limitSet || u.user != "broker" {
		t.Errorf("an empty assignment resets LimitNOFILE: %+v", u)
	}
	for v, want := range map[string][2]uint64{"4096": {4096, 4096}, "1024:8192": {1024, 8192}, "infinity": {1 << 20, 1 << 20}, "1024:infinity": {1024, 1 << 20}} {
		s, h, ok := parseNoFileValue(v, 1<<20)
		if !ok || s != want[0] || h != want[1] {
			t.Errorf("%s: %d:%d %v", v, s, h, ok)
		}
	}
	for _, v := range []string{"", "x", "8192:1024", "1:2:3"} {
		if _, _, ok := parseNoFileValue(v, 1<<20); ok {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	expect(t, one(t, memory{}, hostEnv(t, "stock", nil)), Warn, "4096 MiB available")
	env := hostEnv(t, "low", nil)
	r := one(t, memory{}, env)
	expect(t, r, Fail, "1024 MiB")
	env.Nodes = 5000 // ~380 MiB: fits, with headroom
	expect(t, one(t, memory{}, env), Pass)
}

// The kernel queues and descriptor limits follow --nodes: a host far too
// small for 50 000 nodes holds 10, and the wanted values grow with the
// fleet rather than starting at the seed.
func TestSystemChecksScaleWithNodes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/sys/net/core/somaxconn"), "128\n")
	writeFile(t, filepath.Join(root, "proc/sys/net/ipv4/tcp_max_syn_backlog"), "256\n")
	writeFile(t, filepath.Join(root, "proc/sys/fs/file-max"), "9223372036854775807\n")
	writeFile(t, filepath.Join(root, "proc/sys/fs/nr_open"), "32768\n")
	writeFile(t, filepath.Join(root, "proc/self/limits"), "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n")
	writeFile(t, filepath.Join(root, "proc/meminfo"), "MemTotal: 2048000 kB\nMemAvailable: 1024000 kB\n")
	env := hostEnv(t, "low", nil)
	env.Sys = Host{Root: root}

	env.Nodes = 10
	for _, c := range []Check{somaxconn(), synBacklog(), fileMax(), nrOpen(), processNoFile{}, memory{}} {
		expect(t, one(t, c, env), Pass)
	}
	expect(t, one(t, synBacklog(), env), Pass, "tcp_max_syn_backlog = 256")

	env.Nodes = 50000
	for _, tc := range []struct {
		c    Check
		want string
	}{
		{somaxconn(), "≥ 6 250 for 50 000 nodes (at least 4 092)"},
		{synBacklog(), "≥ 12 500 for 50 000 nodes (at least 8 192)"},
		{nrOpen(), "≥ 101 024 for 50 000 nodes"},
	} {
		c, want := tc.c, tc.want
		r := one(t, c, env)
		expect(t, r, Fail)
		if r.Wanted != want && !strings.HasPrefix(r.Wanted, want) {
			t.Errorf("%s: wanted %q, want %q", c.Name(), r.Wanted, want)
		}
	}
	expect(t, one(t, processNoFile{}, env), Fail, "the broker starts with 4 096")
	expect(t, one(t, memory{}, env), Fail)

	// Between the two: the queue must hold the whole fleet up to the seed.
	env.Nodes = 300
	r := one(t, synBacklog(), env)
	expect(t, r, Fail)
	if r.Wanted != "≥ 300 for 300 nodes (at least 300)" || r.Sysctl != "net.ipv4.tcp_max_syn_backlog = 300" {
		t.Errorf("wanted %q, sysctl %q", r.Wanted, r.Sysctl)
	}
}

func TestQueueLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n          int
		need, want int64
	}{
		{0, 128, 128}, {10, 128, 128}, {1000, 1000, 1000}, {8192, 8192, 8192}, {50000, 8192, 12500}, {2000000, 8192, 262144},
	} {
		if need, want := queueLevels(tc.n, seedSynBacklog, 4, 262144); need != tc.need || want != tc.want {
			t.Errorf("%d nodes: need %d want %d, expected %d %d", tc.n, need, want, tc.need, tc.want)
		}
	}
}
