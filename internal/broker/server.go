// Package broker runs the Choria network broker: the embedded NATS engine
// with a TLS listener that admits only clients whose certificate the
// configured CA signed and did not revoke.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Broker is one network broker. Make it with New, start it with Run.
type Broker struct {
	cfg   *config.Config
	log   *slog.Logger
	files pki.Files

	cert  atomic.Pointer[tls.Certificate]
	trust atomic.Pointer[pki.Trust]
	// handshakeTLS is what each client handshake's config is copied from.
	handshakeTLS *tls.Config

	admission *admissionStats

	gate          *gate // nil when handshake admission is off
	policy        atomic.Pointer[authz.Policy]
	conns         sync.Map // cid -> *connInfo of admitted clients
	violations    map[string]*atomic.Uint64
	roleDenied    atomic.Uint64
	systemRefused atomic.Uint64 // system account logins refused (auth.go)
	crl           crlState
	pki           pkiState
	trustRetry    time.Duration // how often a failed CA or CRL reload is retried and logged again
	trustStamps   []fileStamp   // of the CA and CRL files as read by New
	opts          *server.Options
	srv           *server.Server
	mon           monitor      // the monitoring listener (monitor.go)
	streams       streamsState // Choria Streams (jetstream.go)

	resolver      *net.Resolver
	peerLog       *throttle    // refused cluster peers, logged once a minute each
	expectedPeers int          // routes configured, this broker left out
	routeRule     pki.PeerRule // whose certificates may be routes

	limiter      *logLimiter // bounds what peers can make us log; tests shorten its limit before Run
	peersRefused refusalCounts
	leaf         leafState // leafnodes (leafnode.go)
	leafsRefused refusalCounts

	gateway         gatewayState // gateway.go
	gatewaysRefused refusalCounts

	fatal     chan string
	fatalOnce sync.Once
	lameDuck  atomic.Bool   // refusing new clients while moving the connected ones off
	quit      chan struct{} // closed when Run returns
	ready     chan struct{}
	reloadMu  sync.Mutex // one reload at a time, from SIGHUP or the watcher
}

// readyTimeout bounds how long the engine may take to open its listeners.
const readyTimeout = 10 * time.Second

// New checks the broker's certificates and builds the engine's options.
// Nothing listens until Run.
func New(cfg *config.Config, log *slog.Logger) (*Broker, error) {
	return newBroker(cfg, log, net.DefaultResolver)
}

// newBroker is New with the resolver that looks up SRV peers.
func newBroker(cfg *config.Config, log *slog.Logger, resolver *net.Resolver) (*Broker, error) {
	if !cfg.BrokerNetwork {
		return nil, errors.New("plugin.choria.broker_network is not enabled; set plugin.choria.broker_network = true to run the network broker")
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:        cfg,
		log:        log,
		files:      pki.ResolveFiles(cfg),
		admission:  newAdmissionStats(),
		resolver:   resolver,
		peerLog:    newThrottle(time.Minute),
		violations: newViolationCounters(),
		fatal:      make(chan string, 1),
		ready:      make(chan struct{}),
		quit:       make(chan struct{}),
		crl:        crlState{refreshNow: make(chan struct{}, 1)},
		trustRetry: time.Minute,
	}
	b.limiter, b.peersRefused = newLogLimiter(log, defaultLogLimit), newRefusalCounts(peerRefusalReasons)
	b.gatewaysRefused = newRefusalCounts(gatewayRefusalReasons)
	b.leafsRefused = newRefusalCounts(leafRefusalReasons)
	b.trustStamps = b.stampTrust()
	now := time.Now()
	id, err := pki.Load(b.files, cfg.Identity, now)
	if err != nil {
		return nil, fmt.Errorf("security provider %s: %w", b.files.Provider, err)
	}
	b.pki.record(pki.Parts, nil, now)
	for _, w := range id.Warnings {
		log.Warn(w)
	}
	b.cert.Store(id.KeyPair.TLS())
	b.trust.Store(id.Trust)
	b.logTrust(id.Trust)

	n := cfg.Network
	if err := b.SetRoles(cfg); err != nil {
		return nil, err
	}
	b.opts, err = b.options()
	if err != nil {
		return nil, err
	}
	b.opts.CustomClientAuthentication = &authenticator{b: b}
	if n.HandshakeAdmission {
		b.gate = newGate(n.HandshakeLimit, n.TLSTimeout)
	} else {
		log.Warn("TLS handshake admission is off (plugin.choria.network.handshake_admission = false): a reconnect storm can overload the broker")
	}
	if err := b.clusterOptions(context.Background(), b.opts); err != nil {
		return nil, err
	}
	if err := b.gatewayOptions(b.opts); err != nil {
		return nil, err
	}
	if b.gateway.on && n.Stream.Store != "" && len(b.opts.Routes) == 0 {
		return nil, gatewayStreamsAlone(cfg)
	}
	b.streams.secret = newInprocSecret()
	b.streamsOptions(b.opts)
	b.websocketOptions(b.opts)
	if err := b.leafnodeOptions(b.opts); err != nil {
		return nil, err
	}
	return b, nil
}

// CheckConfig is New's refusals that need only the settings: no file, no
// network. It runs before the certificates load, and preflight shares it
// (through runner.Validate) so that it refuses what run refuses.
func CheckConfig(cfg *config.Config) error {
	n := cfg.Network
	if n.LameDuckGrace >= n.LameDuckDuration {
		return fmt.Errorf("plugin.choria.network.lame_duck_grace (%s) must be shorter than plugin.choria.network.lame_duck_duration (%s)", n.LameDuckGrace, n.LameDuckDuration)
	}
	if _, err := publicURL(n.PublicURL); err != nil {
		return err
	}
	if _, err := newPolicy(cfg); err != nil {
		return err
	}
	if _, err := pki.CompilePatterns("plugin.choria.network.cluster_brokers", n.ClusterBrokers); err != nil {
		return err
	}
	if _, err := pki.CompilePatterns("plugin.choria.network.gateway_brokers", n.GatewayBrokers); err != nil {
		return err
	}
	if n.GatewayPort > 0 && n.Stream.Store != "" && len(n.Peers) == 0 && !cfg.UseSRV {
		return gatewayStreamsAlone(cfg)
	}
	if err := checkLeafConfig(cfg); err != nil {
		return err
	}
	return checkMappings(cfg)
}

func newPolicy(cfg *config.Config) (*authz.Policy, error) {
	n := cfg.Network
	p, err := authz.NewPolicy(n.Roles, cfg.Security.CertnameWhitelist, cfg.Security.PrivilegedUsers, n.FederationBrokers, n.ClientHosts, n.DenyServerConnections)
	if p != nil {
		p.PrivateReplies = n.Stream.PrivateReplies
	}
	return p, err
}

// publicURL is the engine's advertise address for public_url, "" when unset.
func publicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	adv, err := advertiseAddress(s)
	if err != nil {
		return "", fmt.Errorf("plugin.choria.network.public_url = %q: %w", s, err)
	}
	return adv, nil
}

func (b *Broker) options() (*server.Options, error) {
	n := b.cfg.Network
	adv, err := publicURL(n.PublicURL)
	if err != nil {
		return nil, err
	}
	port := n.ClientPort
	if port == 0 {
		port = server.RANDOM_PORT // tests; config files cannot say 0
	}
	opts := &server.Options{
		ServerName:      b.cfg.Identity,
		Host:            n.ListenAddress,
		Port:            port,
		MaxConn:         n.MaxConnections,
		WriteDeadline:   n.WriteDeadline,
		TLS:             true,
		TLSConfig:       b.tlsConfig(),
		TLSTimeout:      n.TLSTimeout.Seconds(),
		AuthTimeout:     n.AuthTimeout.Seconds(),
		NoSigs:          true,
		Debug:           b.log.Enabled(context.Background(), slog.LevelDebug),
		ClientAdvertise: adv,
	}
	return opts, nil
}

// advertiseAddress turns host:port or nats://host:port into the engine's host:port.
func advertiseAddress(s string) (string, error) {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("not host:port or nats://host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("port %q is not 1-65535", port)
	}
	return net.JoinHostPort(host, port), nil
}

// Run starts the engine and serves until ctx ends, then stops it and
// returns. It returns an error when the engine cannot start or fails.
func (b *Broker) Run(ctx context.Context) error {
	srv, err := server.NewServer(b.opts)
	if err != nil {
		return fmt.Errorf("cannot configure the NATS engine: %w", err)
	}
	if err := b.applyMappings(srv); err != nil {
		return err
	}
	srv.SetLoggerV2(&natsLogger{log: b.log, fatal: b.onFatal, limiter: b.limiter,
		filters: []func(string) bool{b.explainRouteAuth, b.explainLeaf, b.explainViolation, b.noteStreamRecovery, b.explainWebsocket, b.explainGateway}}, b.opts.Debug, false, false)
	b.srv = srv

	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Our own JetStream work ends before the engine stops: a stream created
	// while JetStream shuts down is never stopped, and its store goroutines
	// outlive the broker.
	var streamsWG sync.WaitGroup
	defer func() {
		stopWatch()
		streamsWG.Wait()
		close(b.quit)
		b.writeStreamsRecord(srv)
		srv.Shutdown()
		srv.WaitForShutdown()
		wg.Wait()
	}()

	var record *streamsRecord
	if b.opts.JetStream {
		record = b.takeStreamsRecord()
	}
	srv.Start()
	if err := b.waitReady(srv); err != nil {
		return err
	}
	if err := b.startMonitor(watchCtx, &wg); err != nil {
		return err
	}
	b.log.Info("broker ready", "identity", b.cfg.Identity, "client", b.ClientAddr().String(), "monitor", b.monitorString(), "certificate", b.files.Certificate)
	close(b.ready)

	if port := b.cfg.Network.PprofPort; port > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.servePprof(watchCtx, port)
		}()
	}
	if b.opts.JetStream {
		streamsWG.Add(2)
		go func() {
			defer streamsWG.Done()
			b.checkStreamsRecord(record) // before the standard streams are made or changed
			b.manageStreamsIfAsked(watchCtx)
		}()
		go func() {
			defer streamsWG.Done()
			b.watchStoreLimit(watchCtx)
		}()
	}
	wg.Add(10)
	go func() {
		defer wg.Done()
		b.watchGateways(watchCtx, 10*time.Second, time.Minute)
	}()
	go func() {
		defer wg.Done()
		b.refreshCRL(watchCtx)
	}()
	go func() {
		defer wg.Done()
		b.limiter.run(watchCtx)
	}()
	go func() {
		defer wg.Done()
		b.trimAfterBursts(watchCtx, 5*time.Second)
	}()
	go func() {
		defer wg.Done()
		b.reportShedding(watchCtx.Done(), 10*time.Second)
	}()
	go func() {
		defer wg.Done()
		b.sweepConns(watchCtx.Done(), time.Minute)
	}()
	go func() {
		defer wg.Done()
		if b.gate != nil {
			b.gate.sweepEvery(watchCtx.Done(), gateSweepEvery)
		}
	}()
	go func() {
		defer wg.Done()
		b.watchTrust(watchCtx, time.Second)
	}()
	go func() {
		defer wg.Done()
		b.watchCluster(watchCtx, 10*time.Second, time.Minute)
	}()
	go func() {
		defer wg.Done()
		b.watchLeafnodes(watchCtx, time.Second)
	}()

	stopped := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.WaitForShutdown()
		close(stopped)
	}()

	select {
	case <-ctx.Done():
		b.log.Info("broker stopping", "identity", b.cfg.Identity)
		return nil
	case msg := <-b.fatal:
		return fmt.Errorf("the NATS engine failed: %s", msg)
	case <-stopped:
		b.log.Info("broker stopped after lame duck", "identity", b.cfg.Identity)
		return nil
	}
}

// LameDuck stops admitting clients, closes the connected ones spread over
// plugin.choria.network.lame_duck_duration (after the grace period), waits
// for them to settle elsewhere, then stops the broker; Run returns. It
// returns at once.
//
// The engine has a lame duck mode of its own, but it shuts down the moment
// the last client is closed; ours leaves the routes up a moment longer so
// that the last nodes to move are reachable again before the member exits.
func (b *Broker) LameDuck() {
	select {
	case <-b.ready: // Run has set up the engine
	default:
		return
	}
	if !b.lameDuck.CompareAndSwap(false, true) {
		return
	}
	n := b.cfg.Network
	b.log.Warn("entering lame duck mode: no new clients; connected ones are moved off over the lame duck duration, then the broker exits",
		"duration", n.LameDuckDuration, "grace", n.LameDuckGrace, "clients", b.srv.NumClients())
	go b.runLameDuck(n.LameDuckGrace, n.LameDuckDuration-n.LameDuckGrace)
}

func (b *Broker) runLameDuck(grace, spread time.Duration) {
	quit := b.quit
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-quit:
			return false
		}
	}
	if !wait(grace) {
		return
	}
	var ids []uint64
	b.conns.Range(func(k, _ any) bool {
		ids = append(ids, k.(uint64))
		return true
	})
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var every time.Duration
	if len(ids) > 0 {
		every = spread / time.Duration(len(ids))
	}
	start := time.Now()
	for i, id := range ids {
		_ = b.srv.DisconnectClientByID(id) // gone already is fine
		// Sleep in steps of at least a millisecond, closing in batches.
		if due := time.Duration(i+1) * every; due-time.Since(start) >= time.Millisecond {
			if !wait(due - time.Since(start)) {
				return
			}
		}
	}
	// Nodes reconnect to the other members within a back-off step or two;
	// the routes stay up meanwhile so replies from them still flow.
	if !wait(max(grace, time.Second)) {
		return
	}
	b.log.Info("lame duck complete, stopping", "moved", len(ids), "took", time.Since(start).Round(time.Millisecond))
	b.writeStreamsRecord(b.srv) // the usual way a member stops
	b.srv.Shutdown()
}

// waitReady waits for the listeners, returning early when the engine
// reports a fatal error such as a port already in use.
func (b *Broker) waitReady(srv *server.Server) error {
	deadline := time.Now().Add(readyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-b.fatal:
			return fmt.Errorf("the broker could not start: %s", msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker did not open %s:%d within %s", b.opts.Host, b.opts.Port, readyTimeout)
		}
	}
	return nil
}

func (b *Broker) onFatal(msg string) {
	b.fatalOnce.Do(func() { b.fatal <- msg })
}

// Ready is closed once the broker accepts connections.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// ClientAddr is the client listener's address; valid after Ready.
func (b *Broker) ClientAddr() *net.TCPAddr {
	if b.srv == nil {
		return nil
	}
	a, _ := b.srv.Addr().(*net.TCPAddr)
	return a
}

// MonitorAddr is the monitoring listener's address, nil when off; valid after Ready.
func (b *Broker) MonitorAddr() *net.TCPAddr {
	return b.mon.addr.Load() // monitor.go; the engine's own listener is off
}

// ClientURL is a nats:// URL for the client listener.
func (b *Broker) ClientURL() string {
	a := b.ClientAddr()
	if a == nil {
		return ""
	}
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// NumClients is the number of connected clients.
func (b *Broker) NumClients() int {
	if b.srv == nil {
		return 0
	}
	return b.srv.NumClients()
}

func (b *Broker) monitorString() string {
	if a := b.MonitorAddr(); a != nil {
		return "http://" + a.String()
	}
	return "off"
}
