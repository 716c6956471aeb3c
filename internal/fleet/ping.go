package fleet

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
)

// PingOptions configure a fleet ping.
type PingOptions struct {
	Servers    []string
	Cert       *pki.KeyPair // the client certificate, RSA
	CA         []*x509.Certificate
	Identity   string // senderid; default the certname
	Collective string // default mcollective
	Filter     *filter.Filter
	Timeout    time.Duration // collection window from the publish, default 2 s
	// ConnectTimeout is how long a refused or failed first connection is
	// retried; default the Timeout (at least 2 s).
	ConnectTimeout time.Duration
	// Expect stops once this many replied; 0 waits for the timeout. While
	// fewer replied and replies have stopped coming, the request is sent
	// again: nodes that were reconnecting when it first left get it too.
	Expect      int
	Federations []string // publish through these federation clusters
	RPC         bool     // then rpcutil ping every responder directly
	GoCurves    bool     // offer Go's default key exchanges instead of go-choria's
}

// Response is one node's answer.
type Response struct {
	Name string        `json:"name"`
	Time time.Duration `json:"time_ns"`
	// RPC status of the rpcutil ping, when asked.
	StatusCode *int   `json:"statuscode,omitempty"`
	StatusMsg  string `json:"statusmsg,omitempty"`
}

// PingResult is everything a ping learned.
type PingResult struct {
	RequestID  string        `json:"request_id"`
	Responses  []Response    `json:"responses"` // in arrival order
	Duplicates int           `json:"duplicates"`
	Invalid    int           `json:"invalid"`
	Sends      int           `json:"sends"`   // discovery requests published
	Repeats    int           `json:"repeats"` // answers to a resent request from nodes that had answered
	Elapsed    time.Duration `json:"elapsed_ns"`
	RPCMissing []string      `json:"rpc_missing,omitempty"`
}

// Names are the responders' names, sorted.
func (r *PingResult) Names() []string {
	out := make([]string, len(r.Responses))
	for i, x := range r.Responses {
		out[i] = x.Name
	}
	sort.Strings(out)
	return out
}

// Summary holds reply-time statistics.
type Summary struct {
	Count                   int
	Min, Avg, P50, P99, Max time.Duration
}

// Summarise computes reply-time statistics.
func (r *PingResult) Summarise() Summary {
	s := Summary{Count: len(r.Responses)}
	if s.Count == 0 {
		return s
	}
	times := make([]time.Duration, s.Count)
	var sum time.Duration
	for i, x := range r.Responses {
		times[i] = x.Time
		sum += x.Time
	}
	slices.Sort(times)
	s.Min, s.Max, s.Avg = times[0], times[s.Count-1], sum/time.Duration(s.Count)
	s.P50 = times[percentileIndex(s.Count, 50)]
	s.P99 = times[percentileIndex(s.Count, 99)]
	return s
}

func percentileIndex(n, p int) int {
	i := (n*p + 99) / 100 // nearest rank
	return min(max(i-1, 0), n-1)
}

// Missing lists expected names that did not reply.
func (r *PingResult) Missing(expected []string) []string {
	got := map[string]bool{}
	for _, x := range r.Responses {
		got[x.Name] = true
	}
	var out []string
	for _, e := range expected {
		if !got[e] {
			out = append(out, e)
		}
	}
	return out
}

// Ping sends a signed broadcast discovery request, as `choria ping` does,
// and collects the replies.
func Ping(ctx context.Context, o PingOptions) (*PingResult, error) {
	if o.Collective == "" {
		o.Collective = "mcollective"
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Filter == nil {
		o.Filter = filter.New()
	}
	if len(o.Servers) == 0 {
		return nil, errors.New("no broker URL: give --server, --config with plugin.choria.middleware_hosts (plugin.choria.federation_middleware_hosts for a federated client), or --dev")
	}
	signer, err := protocol.NewSigner(o.Cert, o.Identity)
	if err != nil {
		return nil, err
	}
	limit := o.ConnectTimeout
	if limit <= 0 {
		limit = max(o.Timeout, ConnectTimeout)
	}
	refused := &refusals{}
	tc := TLSConfig(o.Cert, o.CA)
	if o.GoCurves {
		tc.CurvePreferences = nil
	}
	nc, err := ConnectClient(ctx, o.Servers, limit, ConnOptions(signer.CallerID(), tc, nats.PingInterval(30*time.Second), nats.MaxReconnects(5), nats.ErrorHandler(refused.handle)))
	if err != nil {
		return nil, err
	}
	defer nc.Close()

	spec := protocol.RequestSpec{Agent: "discovery", Collective: o.Collective, Payload: []byte("ping"), Base64: true, Filter: o.Filter}
	t, req, err := signer.NewRequest(spec)
	if err != nil {
		return nil, err
	}
	res := &PingResult{RequestID: req.Envelope.RequestID}
	var start time.Time
	collect := newCollector(o.Expect, func(name string, _ []byte) {
		res.Responses = append(res.Responses, Response{Name: name, Time: time.Since(start)})
	})
	if err := subscribeReplies(nc, t.Headers.ReplyTo, collect); err != nil {
		return nil, err
	}
	targets := []string{protocol.BroadcastSubject(o.Collective, "discovery")}
	start = time.Now()
	if err := publishRequest(nc, t, signer.Identity, targets, o.Federations); err != nil {
		return nil, err
	}
	res.Sends = 1
	if o.Expect > 0 {
		// A new request each time, with its own reply subject: nodes that
		// had answered answer again, counted as repeats, not duplicates.
		resend := func() error {
			t, _, err := signer.NewRequest(spec)
			if err != nil {
				return err
			}
			if err := subscribeReplies(nc, t.Headers.ReplyTo, collect); err != nil {
				return err
			}
			res.Sends++
			return publishRequest(nc, t, signer.Identity, targets, o.Federations)
		}
		if err := collect.waitResending(ctx, o.Timeout, resendQuiet, resend); err != nil {
			return nil, err
		}
	} else {
		collect.wait(ctx, o.Timeout)
	}
	res.Elapsed = time.Since(start)
	res.Duplicates, res.Invalid, res.Repeats = collect.counts()
	if err := refused.err(signer.Identity); err != nil {
		return res, err
	}

	if o.RPC && len(res.Responses) > 0 {
		if err := rpcPing(ctx, nc, signer, o, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// refusals records the broker's permission refusals, which NATS reports
// asynchronously: a request the broker refused to carry gets no replies,
// and "0 replies" alone would hide why.
type refusals struct {
	mu    sync.Mutex
	first error
}

func (r *refusals) handle(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == nil {
		r.first = err
	}
}

func (r *refusals) err(identity string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == nil {
		return nil
	}
	return fmt.Errorf("the broker refused this request (%v): the certificate %q does not have the client role there, so it may not publish requests or read replies; use a client certificate (named to match plugin.choria.security.certname_whitelist, by default <user>.mcollective) or, for an administrator, one matching plugin.choria.security.privileged_users", r.first, identity)
}

// directChunk is how many node subjects a federated direct request names,
// as Choria's client chunks them.
const directChunk = 200

// rpcPing sends one direct rpcutil ping to every responder, as `choria req
// rpcutil ping` does: the same signed request to each node subject.
func rpcPing(ctx context.Context, nc *nats.Conn, signer *protocol.Signer, o PingOptions, res *PingResult) error {
	f := filter.New()
	f.Agent = []string{"rpcutil"}
	t, _, err := signer.NewRequest(protocol.RequestSpec{Agent: "rpcutil", Collective: o.Collective, Payload: []byte(`{"agent":"rpcutil","action":"ping","data":{}}`), Filter: f})
	if err != nil {
		return err
	}
	index := map[string]int{}
	var targets []string
	for i, r := range res.Responses {
		index[r.Name] = i
		targets = append(targets, protocol.NodeSubject(o.Collective, r.Name))
	}
	var mu sync.Mutex
	collect := newCollector(len(targets), func(name string, body []byte) {
		i, ok := index[name]
		if !ok {
			return
		}
		var reply rpcReply
		code := -1
		msg := "unparsable reply"
		if _, r, err := protocol.ParseSecureReply(body); err == nil && json.Unmarshal([]byte(r.Message), &reply) == nil {
			code, msg = reply.StatusCode, reply.StatusMsg
		}
		mu.Lock()
		res.Responses[i].StatusCode, res.Responses[i].StatusMsg = &code, msg
		mu.Unlock()
	})
	if err := subscribeReplies(nc, t.Headers.ReplyTo, collect); err != nil {
		return err
	}
	if err := publishRequest(nc, t, signer.Identity, targets, o.Federations); err != nil {
		return err
	}
	collect.wait(ctx, o.Timeout+2*time.Second) // discovery window plus rpcutil's agent timeout
	mu.Lock()
	defer mu.Unlock()
	for _, r := range res.Responses {
		if r.StatusCode == nil {
			res.RPCMissing = append(res.RPCMissing, r.Name)
		}
	}
	return nil
}

// publishRequest sends t to every target, or through each federation with
// the targets in the federation header (in chunks of 200).
func publishRequest(nc *nats.Conn, t *protocol.Transport, identity string, targets, federations []string) error {
	url := ConnectedURL(nc)
	t.AddHop(url, identity, url)
	if len(federations) == 0 {
		data, err := t.Marshal()
		if err != nil {
			return err
		}
		for _, s := range targets {
			if err := nc.Publish(s, data); err != nil {
				return err
			}
		}
		return nc.Flush()
	}
	for start := 0; start < len(targets); start += directChunk {
		chunk := targets[start:min(start+directChunk, len(targets))]
		ft := *t
		ft.Headers.Federation = &protocol.FederationHeaders{RequestID: requestIDOf(t), Target: chunk}
		data, err := ft.Marshal()
		if err != nil {
			return err
		}
		for _, fed := range federations {
			if err := nc.Publish(protocol.FederationSubject(fed), data); err != nil {
				return err
			}
		}
	}
	return nc.Flush()
}

// requestIDOf is the last part of the reply subject, the request ID.
func requestIDOf(t *protocol.Transport) string {
	s := t.Headers.ReplyTo
	return s[strings.LastIndexByte(s, '.')+1:]
}

func subscribeReplies(nc *nats.Conn, subject string, c *collector) error {
	sub, err := nc.Subscribe(subject, c.handle)
	if err != nil {
		return err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	c.subs = append(c.subs, sub)
	// The reply subscription must be in place before the request leaves.
	return nc.Flush()
}

// collector gathers replies by mc_sender until the expected count or the window ends.
type collector struct {
	mu       sync.Mutex
	seen     map[string]bool
	perSend  map[string]bool // reply subject + sender: a second one is a duplicate
	expect   int
	done     chan struct{}
	doneOnce sync.Once
	dup      int
	inval    int
	repeats  int  // answers to a resent request from nodes that had answered
	closed   bool // set when the window ends; later replies are ignored
	onReply  func(name string, body []byte)
	subs     []*nats.Subscription
}

func newCollector(expect int, onReply func(string, []byte)) *collector {
	return &collector{seen: map[string]bool{}, perSend: map[string]bool{}, expect: expect, done: make(chan struct{}), onReply: onReply}
}

func (c *collector) handle(m *nats.Msg) {
	t, err := protocol.ParseTransport(m.Data)
	var body []byte
	if err == nil {
		body, err = t.Body()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case err != nil || t.Headers.Sender == "":
		c.inval++
	case c.perSend[m.Subject+" "+t.Headers.Sender]:
		c.dup++
	case c.seen[t.Headers.Sender]:
		c.perSend[m.Subject+" "+t.Headers.Sender] = true
		c.repeats++
	default:
		c.perSend[m.Subject+" "+t.Headers.Sender] = true
		c.seen[t.Headers.Sender] = true
		c.onReply(t.Headers.Sender, body)
		if c.expect > 0 && len(c.seen) >= c.expect {
			c.doneOnce.Do(func() { close(c.done) })
		}
	}
}

func (c *collector) wait(ctx context.Context, window time.Duration) {
	timer := time.NewTimer(window)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	c.close()
}

// resendQuiet is how long replies must have stopped before a request that
// still misses expected nodes is sent again; it doubles after each send.
const resendQuiet = time.Second

// resendQuietMax caps the doubling at the longest step of the connect
// back-off, so that nodes back after a long storm are asked soon enough.
const resendQuietMax = 5 * time.Second

// waitResending waits as wait does, and calls resend whenever no new reply
// came for quiet (doubling after each), until the window ends.
func (c *collector) waitResending(ctx context.Context, window, quiet time.Duration, resend func() error) error {
	defer c.close()
	end := time.Now().Add(window)
	tick := time.NewTicker(quiet / 10)
	defer tick.Stop()
	lastCount, lastChange := 0, time.Now()
	for {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now()
		if !now.Before(end) {
			return nil
		}
		c.mu.Lock()
		n := len(c.seen)
		c.mu.Unlock()
		if n != lastCount {
			lastCount, lastChange = n, now
			continue
		}
		if now.Sub(lastChange) >= quiet {
			if err := resend(); err != nil {
				return err
			}
			lastChange = now
			quiet = min(2*quiet, resendQuietMax)
		}
	}
}

func (c *collector) close() {
	for _, sub := range c.subs {
		_ = sub.Unsubscribe()
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func (c *collector) counts() (dup, invalid, repeats int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dup, c.inval, c.repeats
}
