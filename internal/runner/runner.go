// Package runner runs what a broker configuration enables: the network
// broker, the federation broker, or both in one process, and stops them
// together.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/adapter"
	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/federation"
	"github.com/choria-broker/choria-broker/internal/logging"
	"github.com/choria-broker/choria-broker/internal/stats"
)

// Runner holds the enabled parts.
type Runner struct {
	Network    *broker.Broker     // nil unless plugin.choria.broker_network
	Federation *federation.Broker // nil unless plugin.choria.broker_federation
	Adapters   *adapter.Adapters  // nil unless plugin.choria.adapters
	// Registry holds every part's metrics, for the stats port.
	Registry *prometheus.Registry
	// Stats serves monitoring on plugin.choria.stats_port: through the
	// network broker's listener, or its own with only a federation broker.
	Stats *stats.Stats
	// Logging, when set, is the logger whose file and level a reload
	// changes; without it logfile and loglevel need a restart.
	Logging *logging.Logger

	log *slog.Logger
	cfg *config.Config // the settings in force: as started, plus what reloads applied
}

// New builds every part the configuration enables, checking each.
// go-choria settings the broker does not implement yet stop it here, so
// that a feature is never silently missing; harmless ones are logged.
func New(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	if err := cfg.Refused(); err != nil {
		return nil, err
	}
	for _, w := range cfg.Ignored() {
		log.Warn(w)
	}
	// A key nothing reads is said once at start, not only by preflight.
	for _, u := range cfg.Unknown {
		log.Warn(u)
	}
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	r := &Runner{Registry: prometheus.NewRegistry(), log: log, cfg: cfg.Clone()}
	var err error
	if cfg.BrokerNetwork {
		if r.Network, err = broker.New(cfg, log); err != nil {
			return nil, err
		}
	}
	if cfg.BrokerFederation {
		if r.Federation, err = federation.New(cfg, log, r.Registry); err != nil { // it adds component=federation itself
			return nil, err
		}
	}
	specs, err := adapter.Specs(cfg)
	if err != nil {
		return nil, err
	}
	if len(specs) > 0 {
		if r.Adapters, err = adapter.New(adapter.Options{Specs: specs, Identity: cfg.Identity, Connect: r.Network.InProcessConn, Ready: r.Network.Ready(), Registry: r.Registry, Log: log.With("component", "adapter")}); err != nil {
			return nil, err
		}
	}
	r.Stats, err = stats.New(stats.Options{Config: cfg, ConfigFile: cfg.File, Network: r.Network, Federation: r.Federation != nil, Registry: r.Registry, Log: log.With("component", "stats")})
	if err != nil {
		return nil, err
	}
	if r.Network != nil {
		r.Network.HandleMonitor("/", r.Stats.Handler())
	}
	return r, nil
}

// ErrNothingToRun is Validate's refusal of a configuration that enables
// neither broker.
var ErrNothingToRun = errors.New("nothing to run: set plugin.choria.broker_network = true for the network broker, plugin.choria.broker_federation = true for the federation broker, or both")

// Validate is every refusal of New that needs only the settings, no file
// or network: run calls it first and preflight's config.run check calls
// it too, so the two cannot disagree about what starts.
func Validate(cfg *config.Config) error {
	if err := cfg.Refused(); err != nil {
		return err
	}
	if !cfg.BrokerNetwork && !cfg.BrokerFederation {
		return ErrNothingToRun
	}
	if cfg.BrokerNetwork {
		if err := broker.CheckConfig(cfg); err != nil {
			return err
		}
	}
	specs, err := adapter.Specs(cfg)
	if err != nil {
		return err
	}
	if len(specs) > 0 && !cfg.BrokerNetwork {
		return fmt.Errorf("%splugin.choria.adapters needs plugin.choria.broker_network = true: adapters run beside the network broker and connect to it in-process", whereOf(cfg, "plugin.choria.adapters"))
	}
	if cfg.BrokerFederation {
		return federation.CheckConfig(cfg)
	}
	return nil
}

// whereOf is "file:line: " of key, or "".
func whereOf(cfg *config.Config, key string) string {
	if w := cfg.Where(key); w != "" {
		return w + ": "
	}
	return ""
}

// MonitorAddr is where monitoring listens, nil when off; valid once the
// parts are ready.
func (r *Runner) MonitorAddr() *net.TCPAddr {
	if r.Network != nil {
		return r.Network.MonitorAddr()
	}
	return r.Stats.Addr()
}

// Run runs every part until ctx ends or one of them stops; a part that
// stops (an error, or a lame duck completed) stops the others too.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f(ctx)
			cancel()
		}()
	}
	if r.Network != nil {
		run(r.Network.Run)
	}
	if r.Federation != nil {
		run(r.Federation.Run)
	}
	if r.Adapters != nil {
		run(r.Adapters.Run)
	}
	run(r.Stats.Run)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// Reload is SIGHUP: it reopens the log file, rereads the configuration
// file the runner was started from, applies what can change while
// running (reload.go), names every other changed setting as needing a
// restart, and rereads every part's certificates (and the network
// broker's CA bundle and CRL). A configuration that does not load changes
// nothing; the certificates are reread all the same.
func (r *Runner) Reload() {
	if r.Logging != nil {
		if err := r.Logging.Reopen(); err != nil {
			r.log.Error("SIGHUP: cannot reopen the log file", "error", err)
		}
	}
	if r.cfg.File != "" {
		r.reloadConfig()
	}
	// Each part logs what went wrong and keeps what it had.
	if r.Network != nil {
		_ = r.Network.Reload()
	}
	if r.Federation != nil {
		_ = r.Federation.Reload()
	}
}

// LameDuck moves the network broker's clients off and then stops everything.
func (r *Runner) LameDuck() {
	if r.Network != nil {
		r.Network.LameDuck()
	}
}
