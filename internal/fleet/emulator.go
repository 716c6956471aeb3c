package fleet

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol"
)

// EmulatorOptions configure an emulated fleet.
type EmulatorOptions struct {
	Servers         []string // broker URLs; several for a cluster
	Nodes           int
	IdentityPattern string   // fmt pattern with one %d, default "emulated-%d.example.net"
	Collectives     []string // default mcollective
	Agents          []string // extra agents beside discovery and rpcutil
	// Certs are shared round robin by the nodes, unless IssueCA is set:
	// then each node gets a certificate of its identity from that CA, over
	// the key of Certs[0], as the broker's node role admits a node to its
	// own subject only.
	Certs   []*pki.KeyPair
	IssueCA *pki.CA
	CA      []*x509.Certificate
	// Trust verifies requests; nil with Insecure.
	Trust    *pki.Trust
	Insecure bool // skip request verification, as choria-emulator did
	// Allowed and Privileged are the certname patterns of §3.3.
	Allowed, Privileged []string
	// ConnectConcurrency bounds first connections in flight (default 100).
	ConnectConcurrency int
	// Registration, when set, makes every node publish a registration
	// request at this interval, as go-choria servers with `registration` do.
	Registration time.Duration
	// GoCurves offers Go's default key exchanges (the post-quantum hybrid
	// first) instead of go-choria's.
	GoCurves bool
	Log      *slog.Logger
}

// Stats count what the fleet did; every dropped request is counted by reason.
type Stats struct {
	Nodes, Connected      int
	Reconnects, Received  uint64
	Replied, PublishError uint64
	Dropped               map[protocol.DropReason]uint64
	// Dials counts connection attempts; DialFailed those that found no
	// listener or timed out (the rest that did not connect failed later,
	// in TLS or the NATS handshake).
	Dials      uint64
	DialFailed map[string]uint64
	// Refused counts the broker's permission refusals (a node whose
	// certificate does not name its identity cannot read its direct
	// subject); Errors other asynchronous connection errors.
	Refused, Errors uint64
	// Registered counts registration messages published.
	Registered uint64
}

// Emulator runs many Choria servers in one process, each with its own
// NATS connection, subscribing and answering as go-choria servers do.
type Emulator struct {
	opts     EmulatorOptions
	verifier *protocol.Verifier
	nodes    []*node

	msgs  chan *nats.Msg
	subMu sync.RWMutex
	subs  map[*nats.Subscription]*node
	cache verdictCache

	connected  atomic.Int64
	reconnects atomic.Uint64
	received   atomic.Uint64
	replied    atomic.Uint64
	registered atomic.Uint64
	pubErrors  atomic.Uint64
	dropped    map[protocol.DropReason]*atomic.Uint64
	dials      atomic.Uint64
	dialFailed map[string]*atomic.Uint64
	refused    atomic.Uint64
	asyncErrs  atomic.Uint64
	refusedLog sync.Once
}

// NewEmulator checks the options and prepares the nodes; Run connects them.
func NewEmulator(o EmulatorOptions) (*Emulator, error) {
	if o.Nodes < 1 {
		return nil, errors.New("--nodes must be at least 1")
	}
	if len(o.Servers) == 0 {
		return nil, errors.New("no broker URL: give --server, --config with plugin.choria.middleware_hosts, or --dev")
	}
	if len(o.Certs) == 0 {
		return nil, errors.New("no node certificate to connect with")
	}
	if o.IdentityPattern == "" {
		o.IdentityPattern = "emulated-%d.example.net"
	}
	if err := CheckIdentityPattern(o.IdentityPattern); err != nil {
		return nil, err
	}
	if len(o.Collectives) == 0 {
		o.Collectives = []string{"mcollective"}
	}
	if o.ConnectConcurrency <= 0 {
		o.ConnectConcurrency = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{opts: o, subs: map[*nats.Subscription]*node{}, dropped: map[protocol.DropReason]*atomic.Uint64{}}
	for _, r := range protocol.DropReasons {
		e.dropped[r] = new(atomic.Uint64)
	}
	e.dialFailed = map[string]*atomic.Uint64{}
	for _, c := range dialCauses {
		e.dialFailed[c] = new(atomic.Uint64)
	}
	if !o.Insecure {
		if o.Trust == nil {
			return nil, errors.New("request verification needs the CA (or use --insecure)")
		}
		allowed, err := protocol.CompilePatterns("plugin.choria.security.certname_whitelist", o.Allowed)
		if err != nil {
			return nil, err
		}
		priv, err := protocol.CompilePatterns("plugin.choria.security.privileged_users", o.Privileged)
		if err != nil {
			return nil, err
		}
		trust := o.Trust
		e.verifier = &protocol.Verifier{Trust: func() *pki.Trust { return trust }, Allowed: allowed, Privileged: priv}
	}
	for i := 0; i < o.Nodes; i++ {
		n := newNode(i, o.IdentityPattern, o.Collectives, o.Agents)
		n.cert = o.Certs[i%len(o.Certs)]
		e.nodes = append(e.nodes, n)
	}
	if o.IssueCA != nil {
		if err := e.issueCerts(o.IssueCA, o.Certs[0]); err != nil {
			return nil, err
		}
	}
	// Room for a broadcast to every subscription at once.
	e.msgs = make(chan *nats.Msg, max(65536, 4*len(e.nodes)))
	e.cache.m = map[[32]byte]*verdict{}
	return e, nil
}

// Run connects every node (bounded concurrency, retrying as go-choria
// does), serves until ctx ends, then closes every connection.
func (e *Emulator) Run(ctx context.Context) error {
	var workers sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.Background())
	for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			e.work(workCtx)
		}()
	}
	defer func() {
		for _, n := range e.nodes {
			if n.nc != nil {
				n.nc.Close()
			}
		}
		stopWork()
		workers.Wait()
	}()

	sem := make(chan struct{}, e.opts.ConnectConcurrency)
	var connecting sync.WaitGroup
	for _, n := range e.nodes {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			connecting.Wait()
			return nil
		}
		connecting.Add(1)
		go func() {
			defer connecting.Done()
			defer func() { <-sem }()
			if err := e.connect(ctx, n, n.cert); err != nil && ctx.Err() == nil {
				e.opts.Log.Error("node could not connect", "identity", n.identity, "error", err)
			}
		}()
	}
	connecting.Wait()
	if e.opts.Registration > 0 {
		e.register(ctx, e.opts.Registration)
	}
	<-ctx.Done()
	return nil
}

// issueCerts gives every node a certificate of its own name over one key,
// signing on every core: about 1 ms a node for an RSA 2048 CA.
func (e *Emulator) issueCerts(ca *pki.CA, base *pki.KeyPair) error {
	next := make(chan *node)
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				kp, err := ca.Issue(pki.IssueOptions{Name: n.identity, Key: base.Key})
				if err != nil {
					errs <- fmt.Errorf("issuing %s a certificate: %w", n.identity, err)
					for range next {
					}
					return
				}
				n.cert = kp
			}
		}()
	}
	for _, n := range e.nodes {
		next <- n
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (e *Emulator) connect(ctx context.Context, n *node, kp *pki.KeyPair) error {
	tc := TLSConfig(kp, e.opts.CA)
	if e.opts.GoCurves {
		tc.CurvePreferences = nil
	}
	opts := ConnOptions(n.identity, tc,
		nats.DisconnectErrHandler(func(*nats.Conn, error) { e.setUp(n, false) }),
		nats.ReconnectHandler(func(*nats.Conn) {
			e.setUp(n, true)
			e.reconnects.Add(1)
		}),
		nats.SetCustomDialer(&nodeDialer{d: net.Dialer{Timeout: ConnectTimeout}, dials: &e.dials, failed: e.dialFailed}),
		// Counted, not printed: nats.go's default writes a line to stderr
		// for each error of each of thousands of connections.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { e.asyncError(n, err) }),
	)
	nc, err := ConnectRetry(ctx, e.opts.Servers, opts)
	if err != nil {
		return err
	}
	for _, s := range n.subjects() {
		sub, err := nc.ChanSubscribe(s, e.msgs)
		if err != nil {
			nc.Close()
			return fmt.Errorf("subscribe %s: %w", s, err)
		}
		// Pending limits apply to the shared channel, not per subscription.
		_ = sub.SetPendingLimits(-1, -1)
		e.subMu.Lock()
		e.subs[sub] = n
		e.subMu.Unlock()
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return err
	}
	e.subMu.Lock()
	n.nc = nc
	e.subMu.Unlock()
	e.setUp(n, true)
	return nil
}

// setUp counts a node in or out of the connected total on a change only:
// nats.go reports a disconnect when a connection that never finished
// subscribing is closed, and counting that made the total negative.
func (e *Emulator) setUp(n *node, up bool) {
	if n.up.CompareAndSwap(!up, up) {
		if up {
			e.connected.Add(1)
		} else {
			e.connected.Add(-1)
		}
	}
}

func (e *Emulator) asyncError(n *node, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		e.asyncErrs.Add(1)
		return
	}
	e.refused.Add(1)
	e.refusedLog.Do(func() {
		e.opts.Log.Warn("the broker refused a node's subscription or publish; with the node role a certificate may read only the direct subject of its own name", "identity", n.identity, "certificate", n.cert.Leaf().Subject.CommonName, "error", err)
	})
}

func (e *Emulator) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-e.msgs:
			e.subMu.RLock()
			n := e.subs[m.Sub]
			e.subMu.RUnlock()
			if n != nil {
				e.process(n, m.Data)
			}
		}
	}
}

func (e *Emulator) drop(r protocol.DropReason) { e.dropped[r].Add(1) }

// process runs a go-choria server's request pipeline for one node: verify,
// filter, collective, TTL, dispatch, reply.
func (e *Emulator) process(n *node, payload []byte) {
	e.received.Add(1)
	v := e.cache.get(payload, e.decode)
	if v.err != nil {
		e.drop(protocol.ReasonOf(v.err))
		return
	}
	req, t := v.req, v.t
	if !req.Envelope.Filter.Match(n.match) {
		e.drop(protocol.FilterMismatch)
		return
	}
	if !n.hasCollective(req.Envelope.Collective) {
		e.drop(protocol.UnknownCollective)
		return
	}
	now := time.Now()
	if !req.WithinTTL(now) {
		e.drop(protocol.TTLExpired)
		return
	}
	body, ok := n.handle(req.Envelope.Agent, req.Payload(), now)
	if !ok {
		e.drop(protocol.UnknownAgent)
		return
	}
	if t.Headers.ReplyTo == "" {
		e.drop(protocol.SchemaViolation)
		return
	}
	secure, err := protocol.NewReply(req, n.identity, body, now)
	if err != nil {
		e.drop(protocol.SchemaViolation)
		return
	}
	reply := protocol.NewTransport(secure, n.identity)
	if t.Federated() {
		f := *t.Headers.Federation
		reply.Headers.Federation = &protocol.FederationHeaders{RequestID: f.RequestID, ReplyTo: f.ReplyTo}
		reply.Headers.SeenBy = append(reply.Headers.SeenBy, t.Headers.SeenBy...)
	}
	e.subMu.RLock()
	nc := n.nc
	e.subMu.RUnlock()
	if nc == nil {
		return
	}
	url := ConnectedURL(nc)
	reply.AddHop(url, n.identity, url)
	data, err := reply.Marshal()
	if err == nil {
		err = nc.Publish(t.Headers.ReplyTo, data)
	}
	if err != nil {
		e.pubErrors.Add(1)
		return
	}
	e.replied.Add(1)
}

// decode parses and (unless insecure) verifies a request payload.
func (e *Emulator) decode(payload []byte) (*protocol.Transport, *protocol.Request, error) {
	t, err := protocol.ParseTransport(payload)
	if err != nil {
		return nil, nil, err
	}
	body, err := t.Body()
	if err != nil {
		return nil, nil, err
	}
	if e.verifier != nil {
		req, err := e.verifier.Verify(body)
		return t, req, err
	}
	sr, err := protocol.ParseSecureRequest(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := protocol.ParseRequest([]byte(sr.Message))
	return t, req, err
}

// Stats is a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	s := Stats{
		Nodes: len(e.nodes), Connected: int(e.connected.Load()), Reconnects: e.reconnects.Load(),
		Received: e.received.Load(), Replied: e.replied.Load(), PublishError: e.pubErrors.Load(),
		Dropped: map[protocol.DropReason]uint64{}, Dials: e.dials.Load(), DialFailed: map[string]uint64{},
		Refused: e.refused.Load(), Errors: e.asyncErrs.Load(), Registered: e.registered.Load(),
	}
	for c, n := range e.dialFailed {
		if v := n.Load(); v > 0 {
			s.DialFailed[c] = v
		}
	}
	for r, c := range e.dropped {
		if v := c.Load(); v > 0 {
			s.Dropped[r] = v
		}
	}
	return s
}

// Identities are the emulated nodes' names, in order.
func (e *Emulator) Identities() []string {
	out := make([]string, len(e.nodes))
	for i, n := range e.nodes {
		out[i] = n.identity
	}
	return out
}

// verdict is the decoding of one payload, shared by every node that got it:
// a broadcast reaches thousands of nodes in this process with the same
// bytes, and verifying it once gives each the same answer.
type verdict struct {
	once sync.Once
	t    *protocol.Transport
	req  *protocol.Request
	err  error
	at   time.Time
}

type verdictCache struct {
	mu sync.Mutex
	m  map[[32]byte]*verdict
}

// verdictCacheSize bounds the cache; directed requests are all distinct.
const verdictCacheSize = 4096

func (c *verdictCache) get(payload []byte, decode func([]byte) (*protocol.Transport, *protocol.Request, error)) *verdict {
	key := sha256.Sum256(payload)
	c.mu.Lock()
	v, ok := c.m[key]
	if !ok {
		if len(c.m) >= verdictCacheSize {
			c.evict()
		}
		v = &verdict{at: time.Now()}
		c.m[key] = v
	}
	c.mu.Unlock()
	v.once.Do(func() { v.t, v.req, v.err = decode(payload) })
	return v
}

// evict drops the older half; called with mu held.
func (c *verdictCache) evict() {
	cut := time.Now().Add(-time.Minute)
	for k, v := range c.m {
		if v.at.Before(cut) || len(c.m) >= verdictCacheSize {
			delete(c.m, k)
		}
		if len(c.m) < verdictCacheSize/2 {
			return
		}
	}
}
