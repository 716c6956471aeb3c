package stats_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// With Choria Streams on, /metrics carries go-choria's stream gauges and
// who leads the streams; health stays green once the streams are in place.
func TestStreamsMetrics(t *testing.T) {
	t.Parallel()
	f := start(t, withStreams(t))
	cfg, base := f.cfg, f.base
	waitFor(t, 20*time.Second, "the standard streams", func() bool {
		return strings.Contains(get(t, base+"/metrics"), `choria_network_stream_streams{identity="`+cfg.Identity+`"} 5`)
	})
	m := get(t, base+"/metrics")
	for _, want := range []string{
		"choria_network_stream_memorystore_max{", "choria_network_stream_filestore_max{", "choria_network_stream_memorystore_used{",
		"choria_network_stream_filestore_used{", "choria_network_stream_consumers{", "choria_network_stream_messages{",
		"choria_network_stream_message_bytes{",
		`choria_broker_stream_leader{identity="` + cfg.Identity + `",leader="` + cfg.Identity + `",stream="KV_CHORIA_LEADER_ELECTION"} 1`,
		`choria_broker_streams_degraded{identity="` + cfg.Identity + `"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("no %s in /metrics", want)
		}
	}
	if !strings.Contains(get(t, base+"/jsz"), `"streams": 5`) {
		t.Error("/jsz does not show the five streams")
	}
}

// A stream whose message block was overwritten while the broker was down
// turns health amber naming the stream, and sets the damaged gauges.
func TestStreamsDamagedHealth(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network.ClientPort, cfg.StatsPort = 0, -1
	store := t.TempDir()
	cfg.Network.Stream.Store = store
	f := run(t, env, cfg)
	r, base := f.r, f.base
	waitFor(t, 20*time.Second, "the standard streams", func() bool {
		return strings.Contains(get(t, base+"/metrics"), `choria_network_stream_streams{identity="`+cfg.Identity+`"} 5`)
	})
	nc, err := nats.Connect(r.Network.ClientURL(), nats.Secure(devbroker.TLS(t, env, env.PKI.Nodes[0])), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := nc.Publish("choria.lifecycle.event.alive.test", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitFor(t, 10*time.Second, "the events in CHORIA_EVENTS", func() bool {
		return strings.Contains(get(t, base+"/jsz?streams=true"), `"messages": 3,`)
	})
	if m := get(t, base+"/metrics"); !strings.Contains(m, `choria_broker_streams_degraded{identity="`+cfg.Identity+`"} 0`) || strings.Contains(m, "choria_broker_stream_damaged{") {
		t.Errorf("degraded before the damage:\n%s", m)
	}
	f.stop()

	blk := filepath.Join(store, "jetstream", "$G", "streams", "CHORIA_EVENTS", "msgs", "1.blk")
	st, err := os.Stat(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blk, bytes.Repeat([]byte{0xa5}, int(st.Size())), 0o640); err != nil {
		t.Fatal(err)
	}
	base = run(t, env, cfg).base
	waitFor(t, 10*time.Second, "the damaged gauge", func() bool {
		return strings.Contains(get(t, base+"/metrics"), `choria_broker_stream_damaged{identity="`+cfg.Identity+`",stream="CHORIA_EVENTS"} 1`)
	})
	if m := get(t, base+"/metrics"); !strings.Contains(m, `choria_broker_streams_degraded{identity="`+cfg.Identity+`"} 1`) {
		t.Errorf("degraded not 1:\n%s", m)
	}
	page := get(t, base+"/")
	if level := elementText(page, "health-level"); level != "amber" || !strings.Contains(page, "CHORIA_EVENTS") || !strings.Contains(page, filepath.Dir(filepath.Dir(blk))) {
		t.Errorf("health %q, want amber naming CHORIA_EVENTS and its directory\n%s", level, page)
	}
}

// With Streams on, the status page has a Choria Streams panel whose
// numbers are the engine's, and a row per standard stream led by this
// broker.
func TestStreamsPanel(t *testing.T) {
	t.Parallel()
	f := start(t, withStreams(t))
	waitFor(t, 20*time.Second, "the five standard streams on the page", func() bool {
		return elementText(get(t, f.base+"/"), "streams-count") == "5"
	})
	srv := f.r.Network.Engine()
	jsz, err := srv.Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	page := get(t, f.base+"/")
	for id, want := range map[string]string{
		"streams-state": "on", "streams-count": "5", "streams-consumers": fmt.Sprint(jsz.Consumers),
		"streams-messages": fmt.Sprint(jsz.Messages), "streams-meta-leader": "not clustered", "streams-role": "single broker",
		"stream-KV_CHORIA_LEADER_ELECTION-leader": srv.Name(), "stream-KV_CHORIA_LEADER_ELECTION-replicas": "1",
		"stream-CHORIA_EVENTS-leader": srv.Name(), "stream-CHORIA_EVENTS-messages": "0",
	} {
		if got := elementText(page, id); got != want {
			t.Errorf("page #%s = %q, want %q", id, got, want)
		}
	}
	// used of limit, in binary units, with the share used
	usedOf := regexp.MustCompile(`^[0-9.]+ (B|[KMGTPE]iB) of [0-9.]+ [KMGTPE]iB \([0-9.]+%\)$`)
	for _, id := range []string{"streams-file", "streams-memory"} {
		if got := elementText(page, id); !usedOf.MatchString(got) {
			t.Errorf("page #%s = %q, want \"<used> of <limit> (<n>%%)\"", id, got)
		}
	}
	if jsz.Config.MaxStore <= 0 || jsz.Config.MaxMemory <= 0 {
		t.Errorf("engine limits %d, %d: want both set", jsz.Config.MaxStore, jsz.Config.MaxMemory)
	}
	if strings.Contains(page, `id="streams-error"`) {
		t.Errorf("page shows a Streams error: %s", elementText(page, "streams-error"))
	}
}

// A store that cannot be made leaves Streams off: the panel says so with
// the error naming the setting, and shows no counts.
func TestStreamsPanelOff(t *testing.T) {
	t.Parallel()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := start(t, func(c *config.Config) { c.Network.Stream.Store = filepath.Join(notDir, "store") })
	page := get(t, f.base+"/")
	if got := elementText(page, "streams-state"); got != "off" {
		t.Errorf("page #streams-state = %q, want off", got)
	}
	if got := elementText(page, "streams-error"); !strings.Contains(got, "plugin.choria.network.stream.store") || !strings.Contains(got, notDir) {
		t.Errorf("page #streams-error = %q, want the setting and the path", got)
	}
	if strings.Contains(page, `id="streams-count"`) || strings.Contains(page, `id="streams-table"`) {
		t.Error("page shows stream counts with Streams off")
	}
}
