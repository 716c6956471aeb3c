package stats_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEndpoints: one listener, on loopback by default, answers the
// engine's /varz and /connz, go-choria's /choria/ and Prometheus
// /metrics, with numbers that match the broker's state.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	f := start(t)
	if ip := f.r.MonitorAddr().IP; !ip.IsLoopback() {
		t.Fatalf("monitoring listens on %s, want loopback by default", ip)
	}
	f.connect(t, f.env.PKI.Nodes[0])
	f.connect(t, f.env.PKI.Nodes[1])
	f.connect(t, f.env.PKI.Client)
	f.refuse(t)
	waitFor(t, 5*time.Second, "3 clients", func() bool { return f.r.Network.NumClients() == 3 })

	var varz struct {
		ServerName  string `json:"server_name"`
		Connections int    `json:"connections"`
		InMsgs      int64  `json:"in_msgs"`
	}
	if err := json.Unmarshal([]byte(get(t, f.base+"/varz")), &varz); err != nil {
		t.Fatal(err)
	}
	if varz.Connections != 3 || varz.ServerName != f.r.Network.Engine().Name() {
		t.Errorf("/varz: %+v, want 3 connections", varz)
	}
	var connz struct {
		NumConns int `json:"num_connections"`
		Conns    []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"connections"`
	}
	if err := json.Unmarshal([]byte(get(t, f.base+"/connz?subs=1")), &connz); err != nil {
		t.Fatal(err)
	}
	if connz.NumConns != 3 || len(connz.Conns) != 3 {
		t.Errorf("/connz: %d connections, want 3", connz.NumConns)
	}
	for _, p := range []string{"/routez", "/subsz", "/healthz"} {
		get(t, f.base+p)
	}

	var choria map[string]any
	if err := json.Unmarshal([]byte(get(t, f.base+"/choria/")), &choria); err != nil {
		t.Fatal(err)
	}
	build, _ := choria["build"].(map[string]any)
	system, _ := choria["system"].(map[string]any)
	for _, k := range []string{"version", "sha", "build_date", "license", "tls", "secure", "go", "max_broker_clients"} {
		if _, ok := build[k]; !ok {
			t.Errorf("/choria/ build has no %q: %v", k, build)
		}
	}
	for _, k := range []string{"rss", "cpu_percent", "cpu_cores"} {
		if _, ok := system[k]; !ok {
			t.Errorf("/choria/ system has no %q: %v", k, system)
		}
	}
	if choria["identity"] != f.r.Network.Engine().Name() || choria["config_file"] != f.env.BrokerConf {
		t.Errorf("/choria/ identity, config_file: %v, %v", choria["identity"], choria["config_file"])
	}

	id := f.r.Network.Engine().Name()
	for _, path := range []string{"/metrics", "/choria/metrics", "/choria/prometheus"} {
		m := get(t, f.base+path)
		for _, want := range []string{
			fmt.Sprintf(`choria_network_connections{identity=%q} 3`, id),
			fmt.Sprintf(`choria_broker_connections_by_role{identity=%q,role="node"} 2`, id),
			fmt.Sprintf(`choria_broker_connections_by_role{identity=%q,role="client"} 1`, id),
			fmt.Sprintf(`choria_broker_refused_connections_total{identity=%q,reason="revoked"} 1`, id),
			`choria_build_info{identity=`,
			`choria_network_in_msgs{`, `choria_network_subscriptions{`, `choria_network_slow_consumers{`,
			`choria_broker_tls_handshakes_total{identity=`, `choria_broker_tls_handshake_limit{`,
			`choria_broker_certificate_expiry_seconds{`, `choria_broker_crl_next_update_seconds{`,
			`choria_broker_cluster_routes_up{`, `choria_broker_subject_violations_total{`,
			`choria_broker_refused_connections_total{identity=`, `reason="deny_server_connections"} 0`, `reason="system_user"} 0`,
			`choria_broker_refused_routes_total{identity=`, `reason="not a cluster peer"} 0`,
			`choria_broker_log_lines_suppressed_total{identity=`, `kind="client connection refused"} 0`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
		if strings.Contains(m, "choria_broker_websocket_connections") {
			t.Errorf("%s has websocket connections with websocket_port unset", path)
		}
	}

	// The status page, without a browser: numbers, then amber on a stale CRL.
	page := get(t, f.base+"/")
	for id, want := range map[string]string{"connections": "3", "role-node": "2", "role-client": "1", "refused-revoked": "1", "health-level": "green"} {
		if got := elementText(page, id); got != want {
			t.Errorf("page #%s = %q, want %q", id, got, want)
		}
	}
	if !strings.Contains(page, "<svg") || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Error("page has no chart or no refresh")
	}
	if strings.Contains(page, `id="websocket-connections"`) {
		t.Error("page has a websocket line with websocket_port unset")
	}
	if strings.Contains(page, "Choria Streams") || strings.Contains(page, `id="streams"`) {
		t.Error("page has a Choria Streams panel with Streams not configured")
	}
	f.staleCRL(t)
	page = get(t, f.base+"/")
	if got := elementText(page, "health-level"); got != "amber" || !strings.Contains(page, "CRL is stale") {
		t.Errorf("health after a stale CRL: %q, want amber for the CRL", got)
	}
	get(t, f.base+"/varz") // still serving
}

// elementText is the text of the element with id, tags stripped.
func elementText(html, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</`).FindStringSubmatch(html)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[1], ""))
}
