package stats_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/runner"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// With Choria Streams on, /metrics carries go-choria's stream gauges and
// who leads the streams; health stays green once the streams are in place.
func TestStreamsMetrics(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network.ClientPort, cfg.StatsPort = 0, -1
	cfg.Network.Stream.Store = t.TempDir()
	r, err := runner.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("runner did not stop within 20s")
		}
	})
	select {
	case <-r.Network.Ready():
	case err := <-done:
		t.Fatalf("broker did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("broker not ready within 20s")
	}
	base := "http://" + r.MonitorAddr().String()
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
