// Package stats is the broker's monitoring: Prometheus metrics with
// go-choria's names, the /choria/ JSON go-choria serves, and a status page
// for people, all on plugin.choria.stats_address:stats_port.
//
// With a network broker the broker's own monitoring listener (beside the
// engine's /varz, /connz, ...) serves Handler; with only a federation
// broker, Run serves it on a listener of its own.
package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/buildinfo"
	"github.com/choria-broker/choria-broker/internal/config"
)

// Options says what to monitor.
type Options struct {
	Config     *config.Config
	ConfigFile string
	Network    *broker.Broker       // nil without a network broker
	Federation bool                 // a federation broker runs and registers on Registry
	Registry   *prometheus.Registry // never the global one
	Log        *slog.Logger
	// SampleEvery is the status page's chart resolution; 10 s unless set (tests).
	SampleEvery time.Duration
}

// Stats serves monitoring for one process.
type Stats struct {
	o       Options
	started time.Time
	hist    *history
	addr    atomic.Pointer[net.TCPAddr]

	mu          sync.Mutex
	collectives []string // seen in subscriptions at the last sample
}

// New registers the metrics on o.Registry.
func New(o Options) (*Stats, error) {
	if o.Registry == nil {
		return nil, errors.New("stats: no registry")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10 * time.Second
	}
	s := &Stats{o: o, started: time.Now(), hist: newHistory(int(time.Hour / o.SampleEvery))}
	cs := []prometheus.Collector{buildInfo(buildinfo.Version(), buildinfo.Commit(), o.Config.Identity)}
	if o.Network != nil {
		cs = append(cs, newNetworkCollector(o.Network, o.Config.Identity), newStreamsCollector(o.Network, o.Config.Identity), newGatewaysCollector(o.Network, o.Config.Identity),
			newLeafCollector(o.Network, o.Config.Identity))
	}
	for _, c := range cs {
		if err := o.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	return s, nil
}

// Handler serves /choria/, the Prometheus endpoints and the status page.
func (s *Stats) Handler() http.Handler {
	mux := http.NewServeMux()
	prom := promhttp.HandlerFor(s.o.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.o.Log}})
	mux.Handle("/metrics", prom)
	mux.Handle("/choria/metrics", prom)
	mux.Handle("/choria/prometheus", prom)
	mux.HandleFunc("/choria/", s.serveChoria)
	mux.HandleFunc("/{$}", s.servePage)
	return mux
}

// Addr is the listener's address when Run serves one (federation only).
func (s *Stats) Addr() *net.TCPAddr { return s.addr.Load() }

// Run samples for the charts until ctx ends. Without a network broker,
// whose listener serves Handler, it also serves Handler itself.
func (s *Stats) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.o.Network == nil && s.o.Config.StatsPort != 0 {
		hs, ln, err := s.listen()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.o.Log.Error("monitoring server failed", "address", ln.Addr().String(), "error", err)
			}
		}()
		defer hs.Close()
	}
	s.sampleLoop(ctx)
	return nil
}

func (s *Stats) listen() (*http.Server, net.Listener, error) {
	addr := net.JoinHostPort(s.o.Config.StatsAddress, strconv.Itoa(max(s.o.Config.StatsPort, 0)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin.choria.stats_port: cannot listen on %s for monitoring: %w", addr, err)
	}
	s.addr.Store(ln.Addr().(*net.TCPAddr))
	return &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}, ln, nil
}

// sampleLoop records a sample now and every SampleEvery; subscriptions
// (for the collectives) are read every sixth sample, as they rarely change
// and reading them walks every subscription.
func (s *Stats) sampleLoop(ctx context.Context) {
	if s.o.Network != nil {
		select {
		case <-s.o.Network.Ready():
		case <-ctx.Done():
			return
		}
	}
	t := time.NewTicker(s.o.SampleEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		s.hist.add(s.sample())
		if i%6 == 0 {
			s.updateCollectives()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }
