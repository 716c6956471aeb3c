package runner

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

const adapterConf = "plugin.choria.adapters = reg\nplugin.choria.adapter.reg.type = choria_streams\nplugin.choria.adapter.reg.ingest.topic = mcollective.broadcast.agent.registration\n"

// Adapters are built beside the network broker; a bad one, or one without
// a network broker, stops run before anything listens, naming file:line.
func TestAdaptersWired(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("broker.conf", []byte("plugin.choria.broker_federation = true\nplugin.choria.federation_middleware_hosts = nats://127.0.0.1:1\n"+adapterConf))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(cfg); err == nil || !strings.Contains(err.Error(), "broker.conf:3: plugin.choria.adapters needs plugin.choria.broker_network = true") {
		t.Errorf("federation only: %v", err)
	}
	cfg, err = config.Parse("broker.conf", []byte("plugin.choria.broker_network = true\nplugin.choria.adapters = reg\nplugin.choria.adapter.reg.type = kafka\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), `broker.conf:3: plugin.choria.adapter.reg.type: unknown Protocol Adapter type "kafka"`) || !strings.Contains(err.Error(), "broker.conf:2: plugin.choria.adapter.reg.ingest.topic: missing") {
		t.Errorf("bad adapter: %v", err)
	}

	env := devbroker.Prepare(t)
	cfg, err = config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	good, err := config.Parse("extra.conf", []byte(adapterConf))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range good.Raw {
		cfg.Raw[k] = v
	}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r.Adapters == nil {
		t.Fatal("no adapters built")
	}
}
