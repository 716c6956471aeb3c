package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// monitor is the HTTP listener on plugin.choria.stats_address:stats_port.
// The broker owns it, not the engine, so that one listener serves the
// engine's endpoints beside Choria's (/choria/, /metrics, the status page).
type monitor struct {
	mu    sync.Mutex
	extra map[string]http.Handler
	addr  atomic.Pointer[net.TCPAddr]
}

// HandleMonitor adds a handler to the monitoring listener; call it before
// Run. The engine's endpoints (/varz, /connz, ...) take precedence.
func (b *Broker) HandleMonitor(pattern string, h http.Handler) {
	b.mon.mu.Lock()
	defer b.mon.mu.Unlock()
	if b.mon.extra == nil {
		b.mon.extra = map[string]http.Handler{}
	}
	b.mon.extra[pattern] = h
}

// monitorMux serves the engine's monitoring endpoints as nats-server does.
func (b *Broker) monitorMux() *http.ServeMux {
	mux := http.NewServeMux()
	s := b.srv
	for path, h := range map[string]http.HandlerFunc{
		"/varz": s.HandleVarz, "/connz": s.HandleConnz, "/routez": s.HandleRoutez,
		"/gatewayz": s.HandleGatewayz, "/leafz": s.HandleLeafz, "/subsz": s.HandleSubsz,
		"/subscriptionsz": s.HandleSubsz, "/stacksz": s.HandleStacksz, "/accountz": s.HandleAccountz,
		"/accstatz": s.HandleAccountStatz, "/jsz": s.HandleJsz, "/healthz": s.HandleHealthz,
		"/ipqueuesz": s.HandleIPQueuesz, "/raftz": s.HandleRaftz,
	} {
		mux.Handle(path, h)
	}
	b.mon.mu.Lock()
	for p, h := range b.mon.extra {
		mux.Handle(p, h)
	}
	b.mon.mu.Unlock()
	return mux
}

// startMonitor opens the monitoring listener (stats_port 0: off, -1: any
// free port, for tests) and serves it until ctx ends.
func (b *Broker) startMonitor(ctx context.Context, wg *sync.WaitGroup) error {
	port := b.cfg.StatsPort
	if port == 0 {
		return nil
	}
	port = max(port, 0)
	addr := net.JoinHostPort(b.cfg.StatsAddress, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("plugin.choria.stats_port: cannot listen on %s for monitoring: %w", addr, err)
	}
	b.mon.addr.Store(ln.Addr().(*net.TCPAddr))
	hs := &http.Server{Handler: b.monitorMux(), ReadHeaderTimeout: 5 * time.Second}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("monitoring server failed", "address", addr, "error", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = hs.Close()
	}()
	return nil
}
