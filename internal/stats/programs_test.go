package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// startProgram runs a program until the test ends, its output in a buffer
// shown when the test fails.
func startProgram(t *testing.T, path string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, args...)
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(path), out.String())
		}
	})
}

// TestPrometheus: real Prometheus scraping the broker sees the connected
// clients in choria_network_connections and a refused connection in the
// refused metric.
func TestPrometheus(t *testing.T) {
	t.Parallel()
	prom := testutil.RequireProgram(t, "prometheus")
	f := start(t)
	f.connect(t, f.env.PKI.Nodes[0])
	f.connect(t, f.env.PKI.Nodes[1])
	f.connect(t, f.env.PKI.Client)
	f.refuse(t)

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: choria
    static_configs:
      - targets: [%q]
`, f.r.MonitorAddr().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	startProgram(t, prom, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=", port)
	query := func(q string) string {
		resp, err := httpClient.Get(api + url.QueryEscape(q))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) != 1 {
			return ""
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		return s
	}
	id := f.r.Network.Engine().Name()
	for q, want := range map[string]string{
		fmt.Sprintf(`choria_network_connections{identity=%q}`, id):                               "3",
		fmt.Sprintf(`choria_broker_refused_connections_total{identity=%q,reason="revoked"}`, id): "1",
		fmt.Sprintf(`choria_broker_connections_by_role{identity=%q,role="node"}`, id):            "2",
		fmt.Sprintf(`count(choria_build_info{identity=%q})`, id):                                 "1",
	} {
		var got string
		waitFor(t, 45*time.Second, fmt.Sprintf("Prometheus to return %s = %s (last %q)", q, want, got), func() bool {
			got = query(q)
			return got == want
		})
	}
}

// TestStatusPageChromium loads the status page in real headless Chromium:
// the rendered numbers match the broker (Choria Streams on, a leafnode
// linked), nothing is wider than an 800, 1 200
// or 1 600 px window, screenshots are written (go test -artifacts keeps
// them), and the health turns amber once the CRL is stale.
func TestStatusPageChromium(t *testing.T) {
	t.Parallel()
	chromium := testutil.RequireProgram(t, "chromium")
	// The widest page: with the Choria Streams and Leafnodes panels.
	f := start(t, withStreams(t), func(c *config.Config) {
		c.Network.LeafnodePort, c.Network.LeafnodeBrokers = testutil.FreePort(t), []string{`^leaf\d+\.example\.net$`}
	})
	f.connect(t, f.env.PKI.Nodes[0])
	f.connect(t, f.env.PKI.Client)
	f.refuse(t)
	_, leafCfg := devbroker.LeafConfigs(t, f.env)
	leafCfg.Raw[config.LeafRemotePrefix+"hub.url"] = fmt.Sprintf("127.0.0.1:%d", f.cfg.Network.LeafnodePort)
	devbroker.StartConfig(t, f.env, leafCfg)
	waitFor(t, 5*time.Second, "2 clients", func() bool { return f.r.Network.NumClients() == 2 })
	waitFor(t, 20*time.Second, "the five standard streams", func() bool {
		return elementText(get(t, f.base+"/"), "streams-count") == "5"
	})
	waitFor(t, 20*time.Second, "the leafnode link", func() bool { return strings.Contains(get(t, f.base+"/"), `class="leaf-link"`) })

	browse := newBrowser(t, chromium)
	dom := browse(f.base+"/", "--dump-dom")
	role := f.r.Network.ConnectionsByRole()
	for id, want := range map[string]string{
		"connections": fmt.Sprint(f.r.Network.NumClients()), "role-node": fmt.Sprint(role["node"]),
		"role-client": fmt.Sprint(role["client"]), "refused-revoked": "1", "health-level": "green",
		"streams-state": "on", "streams-count": "5", "stream-KV_CHORIA_LEADER_ELECTION-leader": f.r.Network.Engine().Name(),
	} {
		if got := elementText(dom, id); got != want {
			t.Errorf("rendered #%s = %q, want %q", id, got, want)
		}
	}
	if n := len(regexp.MustCompile(`<svg class="chart"`).FindAllString(dom, -1)); n != 3 {
		t.Errorf("rendered %d charts, want 3", n)
	}

	measureLayout(t, browse, get(t, f.base+"/"), 800, 1200, 1600)
	for _, width := range []int{800, 1200} {
		shot := filepath.Join(t.ArtifactDir(), fmt.Sprintf("status-%d.png", width))
		browse(f.base+"/", "--screenshot="+shot, fmt.Sprintf("--window-size=%d,1300", width))
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}

	f.staleCRL(t)
	dom = browse(f.base+"/", "--dump-dom")
	if got := elementText(dom, "health-level"); got != "amber" || !strings.Contains(dom, "CRL is stale") {
		t.Errorf("rendered health after a stale CRL: %q, want amber for the CRL", got)
	}
}

// newBrowser runs headless Chromium on a page with extra flags and
// returns its output.
func newBrowser(t *testing.T, chromium string) func(page string, extra ...string) string {
	dir := t.TempDir()
	return func(page string, extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile")}, extra...)
		cmd := exec.CommandContext(ctx, chromium, append(args, page)...)
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return string(out)
	}
}

// measureLayout serves page with layoutProbe added from loopback and
// checks at each window width that it fills the window, its three charts
// are at least 200 px wide, and nothing reaches past the window.
func measureLayout(t *testing.T, browse func(string, ...string) string, page string, widths ...int) {
	t.Helper()
	probed := strings.Replace(page, "</body>", layoutProbe+"</body>", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, probed)
	}))
	defer srv.Close()
	for _, width := range widths {
		out := elementText(browse(srv.URL+"/", "--dump-dom", fmt.Sprintf("--window-size=%d,1000", width)), "layout-probe")
		var got struct {
			Width  float64
			Charts []float64
			Over   []string
		}
		if err := json.Unmarshal([]byte(html.UnescapeString(out)), &got); err != nil {
			t.Fatalf("%d px: no layout report from the page (%v): %q", width, err, out)
		}
		if got.Width < float64(width)*0.9 || got.Width > float64(width) {
			t.Errorf("%d px window: page measured %.0f px wide; is --window-size honoured?", width, got.Width)
		}
		if len(got.Charts) != 3 {
			t.Errorf("%d px: measured %d charts, want 3", width, len(got.Charts))
		}
		for i, w := range got.Charts {
			if w < 200 {
				t.Errorf("%d px: chart %d is only %.0f px wide", width, i+1, w)
			}
		}
		for _, o := range got.Over {
			t.Errorf("%d px window: %s", width, o)
		}
	}
}

// layoutProbe, appended to the status page, writes into #layout-probe the
// viewport width, each chart's width, and every chart, figure, section or
// table reaching past the viewport (or the page scrolling sideways).
const layoutProbe = `<script>
(function () {
  var vw = document.documentElement.clientWidth, charts = [], over = [];
  var sw = document.documentElement.scrollWidth;
  if (sw > vw) over.push("the page scrolls sideways: " + sw + " px of content");
  document.querySelectorAll("svg.chart, figure, section, table").forEach(function (e, i) {
    var r = e.getBoundingClientRect();
    if (e.matches("svg.chart")) charts.push(r.width);
    if (r.left < 0 || r.right > vw) over.push(e.tagName.toLowerCase() + " #" + i + " spans " + Math.round(r.left) + " to " + Math.round(r.right) + " px");
  });
  var p = document.createElement("pre");
  p.id = "layout-probe";
  p.textContent = JSON.stringify({width: vw, charts: charts, over: over});
  document.body.appendChild(p);
})();
</script>`
