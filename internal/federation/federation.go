// Package federation runs a Choria federation broker: it joins one member
// collective to a federation network by rewriting Choria transport headers,
// wire-compatible with go-choria's federation broker.
//
// Requests that federated clients publish to choria.federation.<cluster>.federation
// go out to their targets on the collective network with replies redirected
// to choria.federation.<cluster>.collective; those replies go back to the
// client's own reply subject. The signed data is never decoded. Instances
// are stateless and share queue groups, so several may serve one cluster.
package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/protocol"
)

// tuning sizes the broker. go-choria runs 10 workers with 20 connections
// per side; a NATS connection moves far more than one worker can feed, so
// a few duplex connections per side and a worker pool per direction do
// more with less.
type tuning struct {
	conns      int   // connections per side; each ingests one direction and egests the other
	workers    int   // transformer workers per direction
	queueMsgs  int   // messages waiting per direction, beyond which ingest drops
	queueBytes int64 // bytes waiting per direction, beyond which ingest drops
	drain      time.Duration
}

func defaultTuning() tuning {
	return tuning{
		conns:      2,
		workers:    max(4, 2*runtime.GOMAXPROCS(0)),
		queueMsgs:  65536,    // a reply burst of a 50 000-node collective
		queueBytes: 64 << 20, // 64 messages of NATS' 1 MiB maximum, or ~40 000 typical replies
		drain:      5 * time.Second,
	}
}

// Broker is one federation broker instance. Make it with New, run it with Run.
type Broker struct {
	log      *slog.Logger
	identity string
	cluster  string
	creds    *credentials
	metrics  *metrics
	tune     tuning

	fed, coll *side
	paths     []*path

	started atomic.Bool
	ready   chan struct{}
	up      atomic.Int32 // links subscribed at least once
	crash   bool         // tests: stop like a killed process, without draining
}

// New checks the settings and credentials and registers the metrics on
// reg; nothing connects until Run.
func New(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*Broker, error) {
	return newBroker(cfg, log, reg, defaultTuning(), net.DefaultResolver.LookupSRV)
}

// CheckConfig is New's refusals that need only the settings: no file, no
// network; preflight shares it through runner.Validate.
func CheckConfig(cfg *config.Config) error {
	if cfg.Identity == "" {
		return errors.New("identity is empty; set identity to this broker's certname")
	}
	// Without hosts or SRV there is nowhere to look up the federation side.
	if fed, _ := locators(cfg, nil); len(fed.hosts) == 0 && (!fed.useSRV || fed.domain == "") {
		_, err := fed.servers(context.Background())
		return err
	}
	return nil
}

func newBroker(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, tune tuning, lookup srvLookup) (*Broker, error) {
	if !cfg.BrokerFederation {
		return nil, errors.New("plugin.choria.broker_federation is not enabled; set plugin.choria.broker_federation = true to run the federation broker")
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	if reg == nil {
		reg = prometheus.NewRegistry() // metrics nobody reads, never the global registry
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds, err := loadCredentials(cfg)
	if err != nil {
		return nil, err
	}
	if _, set := cfg.Raw["plugin.choria.federation.collectives"]; set {
		log.Warn("plugin.choria.federation.collectives is a client setting; the federation broker ignores it")
	}
	cluster := cfg.Federation.Cluster
	fedLoc, collLoc := locators(cfg, lookup)
	m, err := newMetrics(reg, cluster, cfg.Identity, func() time.Time { return creds.cert.Load().Leaf.NotAfter })
	if err != nil {
		return nil, fmt.Errorf("federation metrics: %w", err)
	}
	b := &Broker{log: log.With("component", "federation", "cluster", cluster), identity: cfg.Identity, cluster: cluster, creds: creds, metrics: m, tune: tune, ready: make(chan struct{})}
	b.fed = newSide(b, federationSide, fedLoc, tune.conns)
	b.coll = newSide(b, collectiveSide, collLoc, tune.conns)
	b.paths = []*path{
		newPath(b, requests, b.fed, b.coll, protocol.FederationSubject(cluster), cluster+"_federation"),
		newPath(b, replies, b.coll, b.fed, protocol.FederationCollectiveSubject(cluster), cluster+"_collective"),
	}
	return b, nil
}

// Reload rereads the broker's certificate and key (SIGHUP): connections
// made from then on present the new pair; links that are up stay up. On
// any error the broker keeps the pair it had.
func (b *Broker) Reload() error {
	leaf, err := b.creds.reload(time.Now())
	if err != nil {
		b.log.Error("reload failed, keeping the current certificate", "error", err)
		return err
	}
	b.log.Info("certificate reloaded", "certificate", b.creds.files.Certificate, "not_after", leaf.NotAfter)
	return nil
}

// Ready is closed once every connection of both sides is up and subscribed.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// Run connects both sides and relays until ctx ends, then stops taking
// messages, finishes those it holds (bounded) and closes its connections.
// Connections are retried forever; Run returns nil after a clean stop.
func (b *Broker) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("federation broker: Run called twice")
	}
	b.log.Info("federation broker starting", "identity", b.identity, "connections_per_side", b.tune.conns, "workers_per_direction", b.tune.workers)

	stop := make(chan struct{})
	var workers sync.WaitGroup
	for _, p := range b.paths {
		for w := 0; w < b.tune.workers; w++ {
			workers.Add(1)
			go func() {
				defer workers.Done()
				p.work(w, stop)
			}()
		}
	}
	var links sync.WaitGroup
	for _, pair := range [][2]*side{{b.fed, b.coll}, {b.coll, b.fed}} {
		for _, l := range pair[0].links {
			links.Add(1)
			go func() {
				defer links.Done()
				l.run(ctx, pair[1])
			}()
		}
	}

	<-ctx.Done()
	links.Wait() // no connection is made or replaced from here on
	b.shutdown(stop, &workers)
	b.log.Info("federation broker stopped")
	return nil
}

// shutdown stops intake (draining what NATS already sent), lets the
// workers finish the queues, then closes every connection. Each step is
// bounded: a dead side cannot hold the process.
func (b *Broker) shutdown(stop chan struct{}, workers *sync.WaitGroup) {
	links := append(append([]*link{}, b.fed.links...), b.coll.links...)
	closeAll := func() {
		for _, l := range links {
			if nc := l.conn.Load(); nc != nil {
				nc.Close()
			}
		}
	}
	if b.crash {
		closeAll()
	} else {
		deadline := time.Now().Add(b.tune.drain)
		for _, l := range links {
			l.drain()
		}
		for _, l := range links {
			l.waitDrained(deadline)
		}
		for _, p := range b.paths {
			for p.active.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // a handler that took the last message
			}
		}
	}
	close(stop)
	done := make(chan struct{})
	go func() {
		workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(b.tune.drain):
		b.log.Warn("federation workers still publishing after the drain timeout; closing connections")
		closeAll() // unblocks publishes stuck on a dead side
		<-done
	}
	for _, l := range links {
		if nc := l.conn.Load(); nc != nil {
			_ = nc.FlushTimeout(time.Second)
			nc.Close()
		}
	}
}

// linkUp notes a link subscribed for the first time.
func (b *Broker) linkUp() {
	if int(b.up.Add(1)) == len(b.fed.links)+len(b.coll.links) {
		close(b.ready)
		b.log.Info("federation broker ready")
	}
}
