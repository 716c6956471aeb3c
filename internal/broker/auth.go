package broker

import (
	"crypto/x509"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/authz"
)

// connInfo is what we know of an admitted connection.
type connInfo struct {
	certs  []*x509.Certificate // as presented, for checks against later CRLs
	name   string
	role   authz.Role
	mu     sync.Mutex
	logged map[string]bool // subjects whose violation was logged; made on the first
}

// authenticator gives every admitted connection the rights of its role;
// the engine calls Check after the TLS handshake, before CONNECT is accepted.
type authenticator struct {
	b *Broker
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	b := a.b
	cs := c.GetTLSConnectionState()
	if cs == nil && b.inprocAllowed(c) {
		c.RegisterUser(&server.User{Username: inprocUser}) // the broker itself: no limits
		return true
	}
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false // admission refused it already; plaintext never gets here
	}
	leaf := cs.PeerCertificates[0]
	// Puppet repeats the CN as a SAN; each name becomes permission entries
	// in every connection, so once is enough.
	names := slices.Compact(slices.Sorted(slices.Values(append([]string{leaf.Subject.CommonName}, leaf.DNSNames...))))
	var ip net.IP
	if tcp, ok := c.RemoteAddress().(*net.TCPAddr); ok {
		ip = tcp.IP
	}
	role := b.policy.Load().Decide(names, ip)
	if role == authz.Denied {
		b.roleDenied.Add(1)
		if b.limiter.allow(limitClients, "deny_server_connections") {
			b.log.Warn("node connection refused by plugin.choria.network.deny_server_connections", "remote", c.RemoteAddress().String(), "certificate", leaf.Subject.CommonName)
		}
		return false
	}
	c.RegisterUser(&server.User{Username: leaf.Subject.CommonName, Permissions: authz.Permissions(role, names)})
	b.conns.Store(c.GetID(), &connInfo{certs: cs.PeerCertificates, name: leaf.Subject.CommonName, role: role})
	return true
}

// violation handles the engine's permission violation lines: a count, and
// one warning per connection and subject, naming the certificate, within
// the log limit.
var violationRe = regexp.MustCompile(`cid:(\d+) - .*?(Publish|Subscription) Violation - (?:Subject|Reply) "([^"]*)"`)

// explainViolation returns false when msg was a violation it handled.
func (b *Broker) explainViolation(msg string) bool {
	// Every engine line passes here, thousands a second in a storm; the
	// regular expression only runs on the few that can match.
	if !strings.Contains(msg, " Violation - ") {
		return true
	}
	m := violationRe.FindStringSubmatch(msg)
	if m == nil {
		return true
	}
	kind := "publish"
	if m[2] == "Subscription" {
		kind = "subscribe"
	}
	b.violations[kind].Add(1)
	cid, _ := strconv.ParseUint(m[1], 10, 64)
	name, role := "unknown", authz.Role("unknown")
	if v, ok := b.conns.Load(cid); ok {
		ci := v.(*connInfo)
		name, role = ci.name, ci.role
		ci.mu.Lock()
		seen := ci.logged[kind+" "+m[3]]
		if ci.logged == nil {
			ci.logged = map[string]bool{} // most connections never need one
		}
		if !seen && len(ci.logged) < maxLoggedSubjects {
			ci.logged[kind+" "+m[3]] = true
		}
		ci.mu.Unlock()
		if seen {
			return false
		}
	}
	// Past maxLoggedSubjects a subject is not remembered, so repeats get
	// here each time; the limiter bounds those as it bounds many connections.
	if !b.limiter.allow(limitSubject, kind) {
		return false
	}
	attrs := []any{"action", kind, "subject", m[3], "certificate", name, "role", string(role), "cid", cid}
	if needsFederationRole(m[3], name, role) {
		// The pattern is an attribute of its own: slog quotes values with
		// spaces and doubles their backslashes, which would not paste.
		attrs = append(attrs, "fix", "if this is a go-choria federation broker, add pattern to plugin.choria.network.federation_brokers on this broker and its cluster peers and restart them; until then it has the "+string(role)+" role",
			"pattern", authz.ExactPattern(name))
	}
	b.log.Warn(limitSubject, attrs...)
	return false
}

// maxLoggedSubjects bounds the subjects remembered per connection for
// logging each once.
const maxLoggedSubjects = 1000

// needsFederationRole: a go-choria federation broker this broker does not
// know as one gets the node role, and a refused choria.federation subject
// is all its operator would otherwise see.
func needsFederationRole(subject, name string, role authz.Role) bool {
	return strings.HasPrefix(subject, "choria.federation.") && role != authz.Federation && name != "unknown"
}

// Violations is how many publishes or subscriptions ("publish", "subscribe") were refused.
func (b *Broker) Violations(kind string) uint64 {
	if c, ok := b.violations[kind]; ok {
		return c.Load()
	}
	return 0
}

// ConnectionsByRole counts connected clients by role, forgetting closed ones.
func (b *Broker) ConnectionsByRole() map[authz.Role]int {
	out := map[authz.Role]int{}
	if b.srv == nil {
		return out
	}
	b.conns.Range(func(k, v any) bool {
		if b.srv.GetClient(k.(uint64)) == nil {
			b.conns.Delete(k)
			return true
		}
		out[v.(*connInfo).role]++
		return true
	})
	return out
}

// sweepConns forgets closed connections now and then, so the table stays
// the size of the fleet.
func (b *Broker) sweepConns(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.ConnectionsByRole()
		}
	}
}

func newViolationCounters() map[string]*atomic.Uint64 {
	return map[string]*atomic.Uint64{"publish": new(atomic.Uint64), "subscribe": new(atomic.Uint64)}
}
