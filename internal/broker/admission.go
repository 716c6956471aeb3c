package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// refusalReasons are the reasons counted, in a fixed order for output.
var refusalReasons = []pki.Reason{pki.NoCertificate, pki.UnknownCA, pki.Revoked, pki.Expired, pki.NotYetValid, pki.WrongUsage, pki.Invalid}

// admissionStats counts refused handshakes by reason and admitted ones.
type admissionStats struct {
	admitted atomic.Uint64
	refused  map[pki.Reason]*atomic.Uint64 // keys fixed at construction
}

func newAdmissionStats() *admissionStats {
	s := &admissionStats{refused: map[pki.Reason]*atomic.Uint64{}}
	for _, r := range refusalReasons {
		s.refused[r] = new(atomic.Uint64)
	}
	return s
}

// Kinds of line the log limiter bounds; each is the message of its lines.
const (
	limitClients  = "client connection refused"
	limitSubject  = "subject refused"
	limitPeers    = "cluster peer refused"
	limitGateways = "gateway refused"
	limitLeafs    = "leafnode refused"
	limitEngine   = "engine connection error"
)

// Route refusal reasons besides the certificate's.
const (
	routePassword = "wrong routes password"
	routeOther    = "other"
)

// peerRefusalReasons are the reasons a route is refused for, in output order.
var peerRefusalReasons = append(slices.Clone(refusalReasons), pki.NotPeer, routePassword, routeOther)

// leafRefusalReasons are the reasons a leafnode link, in or out, is
// refused for, in output order.
var leafRefusalReasons = append(slices.Clone(refusalReasons), pki.NotLeaf, routeOther)

// refusalCounts counts refusals by reason; its keys are fixed at
// construction so that a peer cannot grow it.
type refusalCounts map[string]*atomic.Uint64

func newRefusalCounts(reasons []pki.Reason) refusalCounts {
	c := refusalCounts{}
	for _, r := range reasons {
		c[string(r)] = new(atomic.Uint64)
	}
	return c
}

func (c refusalCounts) add(reason string) {
	if n, ok := c[reason]; ok {
		n.Add(1)
		return
	}
	c[routeOther].Add(1)
}

// tlsConfig is the client listener's TLS configuration. The engine uses
// this object as given for every handshake, and we never reload the engine,
// so our callbacks stay in force; certificates and trust change by swapping
// the atomics they read.
func (b *Broker) tlsConfig() *tls.Config {
	b.handshakeTLS = b.hardenTLS(&tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return b.cert.Load(), nil },
		// We verify ourselves in VerifyConnection: Go's own verification
		// would refuse before we can say why, and knows nothing of CRLs.
		ClientAuth: tls.RequestClientCert,
	})
	return b.hardenTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: b.configForClient,
	})
}

// hardenTLS applies plugin.security.cipher_suites and ecc_curves. Every
// tls.Config the broker makes goes through it: a config returned by
// GetConfigForClient inherits nothing from the listener's.
func (b *Broker) hardenTLS(tc *tls.Config) *tls.Config {
	b.cfg.Security.ApplyTLS(tc)
	return tc
}

// configForClient gives each handshake a config whose verification knows
// the peer's address, so that a refusal is logged once, with who and why,
// and frees the handshake's admission slot. The connection keeps that
// config for its life, so it is a copy of one made once (sharing its
// certificate callback, suites and curves), and what verification needs
// is dropped once used.
func (b *Broker) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if b.lameDuck.Load() {
		return nil, errLameDuck
	}
	release := func(bool) {}
	if b.gate != nil {
		var ok bool
		var gone func() bool
		if hello.Conn != nil {
			gone = peerGone(hello.Conn)
		}
		if release, ok = b.gate.enter(time.Now(), gone); !ok {
			return nil, errShed
		}
	}
	h := &handshake{b: b, conn: hello.Conn, release: release}
	tc := b.handshakeTLS.Clone()
	tc.VerifyConnection = h.verify
	return tc, nil
}

// handshake is what one client handshake's verification needs.
type handshake struct {
	b       *Broker
	conn    net.Conn // nil in tests that hand-craft a ClientHello
	release func(completed bool)
}

// verify frees the admission slot and admits or refuses the certificate.
// Go calls it once per handshake, from the handshake's goroutine.
func (h *handshake) verify(cs tls.ConnectionState) error {
	h.release(true)
	conn := h.conn
	// The slot, its timer and the socket check are garbage from here on.
	h.release, h.conn = func(bool) {}, nil
	return h.b.admit(conn, cs)
}

// errShed refuses a handshake beyond the admission limit; the engine logs
// it at debug level only (a storm sheds thousands a second).
var errShed = errors.New(admissionMarker + ": too many TLS handshakes in flight, retry later")

// errLameDuck refuses clients while the broker moves its fleet elsewhere.
var errLameDuck = errors.New(admissionMarker + ": lame duck mode, connect to another broker")

// Handshakes returns the admission gate's counters; zero when it is off.
func (b *Broker) Handshakes() GateStats {
	if b.gate == nil {
		return GateStats{}
	}
	return b.gate.stats()
}

// reportShedding logs, while the gate refuses handshakes, how many it
// refused and at what limit: one line per period instead of one per node.
func (b *Broker) reportShedding(stop <-chan struct{}, every time.Duration) {
	if b.gate == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := b.gate.stats()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s := b.gate.stats()
		if shed := s.Shed - last.Shed; shed > 0 {
			b.log.Warn("reconnect storm: TLS handshakes beyond what the broker can finish in time were refused; those nodes retry",
				"refused", shed, "completed", s.Completed-last.Completed, "limit", s.Limit, "in_flight", s.InFlight, "period", every)
		}
		last = s
	}
}

// admit decides whether a handshake's client certificate may connect;
// conn, when known, names the client in the log line of a refusal.
func (b *Broker) admit(conn net.Conn, cs tls.ConnectionState) error {
	re := b.verifyClient(cs)
	if re == nil {
		return nil
	}
	err := fmt.Errorf("%s: %w", admissionMarker, re)
	if !b.limiter.allow(limitClients, string(re.Reason)) {
		return err
	}
	remote := "unknown"
	if conn != nil {
		remote = conn.RemoteAddr().String()
	}
	attrs := []any{"remote", remote, "reason", string(re.Reason)}
	if re.Subject != "" {
		attrs = append(attrs, "subject", re.Subject)
	}
	if re.Detail != "" {
		attrs = append(attrs, "detail", re.Detail)
	}
	b.log.Warn(limitClients, attrs...)
	return err
}

// verifyClient checks a client certificate against the CA bundle and CRL
// in force and counts the verdict; nil admits it.
func (b *Broker) verifyClient(cs tls.ConnectionState) *pki.RefusedError {
	err := b.trust.Load().VerifyClient(cs.PeerCertificates, time.Now())
	if err == nil {
		b.admission.admitted.Add(1)
		return nil
	}
	var re *pki.RefusedError
	if !errors.As(err, &re) {
		re = &pki.RefusedError{Reason: pki.Invalid, Detail: err.Error()}
	}
	b.admission.refused[re.Reason].Add(1)
	return re
}

// Refused returns how many handshakes were refused for reason.
func (b *Broker) Refused(reason pki.Reason) uint64 {
	if c, ok := b.admission.refused[reason]; ok {
		return c.Load()
	}
	return 0
}

// PeersRefused returns how many routes were refused for reason, one of
// the certificate reasons, "not a cluster peer", "wrong routes password"
// or "other".
func (b *Broker) PeersRefused(reason string) uint64 {
	if c, ok := b.peersRefused[reason]; ok {
		return c.Load()
	}
	return 0
}

// PeerRefusalReasons are PeersRefused's reasons.
func PeerRefusalReasons() []string {
	out := make([]string, len(peerRefusalReasons))
	for i, r := range peerRefusalReasons {
		out[i] = string(r)
	}
	return out
}

// Denied is how many connections plugin.choria.network.deny_server_connections refused.
func (b *Broker) Denied() uint64 { return b.roleDenied.Load() }

// LogSuppressed is how many lines of kind the log limit held back; kinds
// are LogLimitKinds.
func (b *Broker) LogSuppressed(kind string) uint64 { return b.limiter.suppressed(kind) }

// LogLimitKinds are the kinds of line the log limit bounds.
func LogLimitKinds() []string {
	return []string{limitClients, limitSubject, limitPeers, limitGateways, limitLeafs, limitEngine}
}

// Admitted returns how many client certificates were admitted.
func (b *Broker) Admitted() uint64 { return b.admission.admitted.Load() }
