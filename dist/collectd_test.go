package dist

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/dist/disttest"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// collectdValues are the values the snippet reads from /varz, as collectd
// names them (<type>-<instance>).
var collectdValues = []string{
	"gauge-connections", "derive-total_connections", "gauge-routes", "gauge-subscriptions",
	"derive-in_msgs", "derive-out_msgs", "derive-in_bytes", "derive-out_bytes",
	"derive-slow_consumers", "gauge-mem",
}

// TestCollectdSnippet runs real collectd with dist/collectd/choria-broker.conf
// (its port changed to a running broker's monitoring port) and the csv
// writer: every value arrives, and the connection gauge counts the
// client connected to the broker.
func TestCollectdSnippet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs collectd against a broker; runs in the full pass")
	}
	t.Parallel()
	collectd := testutil.RequireProgram(t, "collectd")
	dir := t.TempDir()
	env := disttest.DevEnv(t, filepath.Join(dir, "dev"))
	broker := disttest.StartBroker(t, env.BrokerConf)
	disttest.Connect(t, env, env.ClientPort, broker.Alive)

	snippet := strings.Replace(read(t, "collectd/choria-broker.conf"), "http://127.0.0.1:8222/varz",
		fmt.Sprintf("http://127.0.0.1:%d/varz", env.StatsPort), 1)
	if err := os.WriteFile(filepath.Join(dir, "choria-broker.conf"), []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "csv")
	conf := filepath.Join(dir, "collectd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `Hostname "test"
FQDNLookup false
BaseDir %q
PIDFile %q
Interval 1
LoadPlugin csv
<Plugin csv>
  DataDir %q
</Plugin>
Include %q
`, dir, filepath.Join(dir, "collectd.pid"), csv, filepath.Join(dir, "choria-broker.conf")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(collectd, "-t", "-C", conf).CombinedOutput(); err != nil {
		t.Fatalf("collectd -t (configuration test): %v\n%s", err, out)
	}

	cmd := exec.Command(collectd, "-f", "-C", conf)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// stop ends collectd; only then is its output read.
	stop := func() string {
		_ = cmd.Process.Kill()
		<-done
		return out.String()
	}
	defer stop()

	values := filepath.Join(csv, "test", "curl_json-choria_broker")
	deadline := time.Now().Add(disttest.Wait)
	for {
		missing := []string{}
		for _, v := range collectdValues {
			if m, _ := filepath.Glob(filepath.Join(values, v+"-*")); len(m) == 0 {
				missing = append(missing, v)
			}
		}
		if len(missing) == 0 && lastValue(t, filepath.Join(values, "gauge-connections-*")) >= 1 {
			break
		}
		select {
		case <-done:
			t.Fatalf("collectd exited:\n%s", stop())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %s collectd wrote no %v, or no connection counted\n%s", disttest.Wait, missing, stop())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lastValue is the last value of a collectd csv file ("epoch,value" lines).
func lastValue(t *testing.T, pattern string) float64 {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		return -1
	}
	lines := strings.Split(strings.TrimSpace(readIfAny(m[0])), "\n")
	_, v, _ := strings.Cut(lines[len(lines)-1], ",")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return -1
	}
	return f
}
