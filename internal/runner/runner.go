// Package runner runs what a broker configuration enables: the network
// broker, the federation broker, or both in one process, and stops them
// together.
package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/federation"
)

// Runner holds the enabled parts.
type Runner struct {
	Network    *broker.Broker     // nil unless plugin.choria.broker_network
	Federation *federation.Broker // nil unless plugin.choria.broker_federation
	// Registry holds every part's metrics, for the stats port.
	Registry *prometheus.Registry
}

// New builds every part the configuration enables, checking each.
func New(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	if !cfg.BrokerNetwork && !cfg.BrokerFederation {
		return nil, errors.New("nothing to run: set plugin.choria.broker_network = true for the network broker, plugin.choria.broker_federation = true for the federation broker, or both")
	}
	r := &Runner{Registry: prometheus.NewRegistry()}
	var err error
	if cfg.BrokerNetwork {
		if r.Network, err = broker.New(cfg, log); err != nil {
			return nil, err
		}
	}
	if cfg.BrokerFederation {
		if r.Federation, err = federation.New(cfg, log.With("component", "federation"), r.Registry); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Run runs every part until ctx ends or one of them stops; a part that
// stops (an error, or a lame duck completed) stops the others too.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
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

// Reload rereads certificates and CRL where a part supports it (SIGHUP).
func (r *Runner) Reload() {
	if r.Network != nil {
		_ = r.Network.Reload() // it logs what went wrong and keeps what it had
	}
}

// LameDuck moves the network broker's clients off and then stops everything.
func (r *Runner) LameDuck() {
	if r.Network != nil {
		r.Network.LameDuck()
	}
}
