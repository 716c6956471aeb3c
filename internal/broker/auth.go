package broker

import (
	"crypto/subtle"
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
	certs     []*x509.Certificate // as presented, for checks against later CRLs
	name      string
	role      authz.Role
	websocket bool // came in on the websocket listener
	mu        sync.Mutex
	logged    map[string]bool // subjects whose violation was logged; made on the first
}

// authenticator gives every admitted connection the rights of its role;
// the engine calls Check after the TLS handshake, before CONNECT is accepted.
type authenticator struct {
	b *Broker
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	b := a.b
	if c.Kind() == server.LEAF {
		return b.authLeaf(c) // leafnode.go
	}
	cs := c.GetTLSConnectionState()
	if cs == nil && b.inprocAllowed(c) {
		c.RegisterUser(&server.User{Username: inprocUser}) // the broker itself: no limits
		return true
	}
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false // admission refused it already; plaintext never gets here
	}
	leaf := cs.PeerCertificates[0]
	if o := c.GetOpts(); o != nil && o.Username != "" && o.Username == b.cfg.Network.SystemUser {
		if !b.systemLogin(c, o.Password, leaf.Subject.CommonName) {
			return false
		}
		// Known like any client, so a revoked certificate or lame duck
		// mode closes it too.
		b.conns.Store(c.GetID(), &connInfo{certs: cs.PeerCertificates, name: leaf.Subject.CommonName, role: systemRole, websocket: isWebsocket(c)})
		return true
	}
	// Puppet repeats the CN as a SAN; each name becomes permission entries
	// in every connection, so once is enough. Sorted in place: one
	// allocation per connect.
	names := append(make([]string, 0, 1+len(leaf.DNSNames)), leaf.Subject.CommonName)
	names = append(names, leaf.DNSNames...)
	slices.Sort(names)
	names = slices.Compact(names)
	var ip net.IP
	if tcp, ok := c.RemoteAddress().(*net.TCPAddr); ok {
		ip = tcp.IP
	}
	policy := b.policy.Load()
	role := policy.Decide(names, ip)
	if role == authz.Denied {
		b.roleDenied.Add(1)
		if b.limiter.allow(limitClients, "deny_server_connections") {
			b.log.Warn("node connection refused by plugin.choria.network.deny_server_connections", "remote", c.RemoteAddress().String(), "certificate", leaf.Subject.CommonName)
		}
		return false
	}
	c.RegisterUser(&server.User{Username: leaf.Subject.CommonName, Permissions: authz.Permissions(role, names, b.streamsRights(policy))})
	b.conns.Store(c.GetID(), &connInfo{certs: cs.PeerCertificates, name: leaf.Subject.CommonName, role: role, websocket: isWebsocket(c)})
	return true
}

// systemRole labels system account connections in ConnectionsByRole.
const systemRole authz.Role = "system"

// systemLogin puts a connection that names the system user into the
// engine's system account with no limits, as go-choria does: an admitted
// client certificate and the password. Unset keys refuse every attempt.
func (b *Broker) systemLogin(c server.ClientAuthentication, password, certificate string) bool {
	want := b.cfg.Network.SystemPassword
	if want != "" && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1 {
		if acc := b.srv.SystemAccount(); acc != nil {
			c.RegisterUser(&server.User{Username: b.cfg.Network.SystemUser, Account: acc})
			return true
		}
	}
	b.systemRefused.Add(1)
	if b.limiter.allow(limitClients, "system user") {
		b.log.Warn(limitClients, "remote", c.RemoteAddress().String(), "reason", "wrong system user password", "certificate", certificate,
			"setting", "plugin.choria.network.system.password")
	}
	return false
}

// SystemRefused is how many system account logins were refused.
func (b *Broker) SystemRefused() uint64 { return b.systemRefused.Load() }

// violation handles the engine's permission violation lines: a count, and
// one warning per connection and subject, naming the certificate, within
// the log limit. Websocket connections are wid:, client port ones cid:.
var violationRe = regexp.MustCompile(`[cw]id:(\d+) - .*?(Publish|Subscription) Violation - (?:Subject|Reply) "([^"]*)"`)

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
	if fix, privileged := b.streamsHint(kind, m[3], name, role); fix != "" {
		attrs = append(attrs, "fix", fix)
		if privileged {
			attrs = append(attrs, "pattern", authz.ExactPattern(name))
		}
	}
	b.log.Warn(limitSubject, attrs...)
	return false
}

// streamsHint names the setting that would allow a refused Choria Streams
// subject, and whether that is privileged_users (for the pattern).
func (b *Broker) streamsHint(kind, subject, name string, role authz.Role) (string, bool) {
	if role != authz.Client && role != authz.Node {
		return "", false
	}
	t := strings.Split(subject, ".")
	inbox := kind == "subscribe" && len(t) >= 3 && t[1] == "reply" && (len(t) == 3 || len(t) == 4 && t[3] == "*")
	api := strings.HasPrefix(subject, "$JS.") || strings.HasPrefix(subject, "$KV.") || strings.HasPrefix(subject, "$O.")
	choria := len(t) == 3 && t[1] == "governor" || len(t) > 3 && t[1] == "submission" && t[2] == "in"
	if !inbox && !api && !choria {
		return "", false
	}
	rights := b.streamsRights(b.policy.Load())
	switch {
	case !rights.On:
		if inbox {
			return "", false // a reply subscription, Streams or not
		}
		return "Choria Streams is off on this broker: set plugin.choria.network.stream.store (see the log at start for why it is off)", false
	case rights.PrivateReplies && (inbox || role == authz.Node):
		if role == authz.Client {
			return "the shared JetStream inbox <collective>.reply.<nuid> is refused by plugin.choria.network.stream.private_replies = true; give the client its own reply subject as inbox prefix (<collective>." + strings.TrimSuffix(strings.TrimPrefix(authz.ReplyPrefixes(name)[0], "*."), ".>") + "), set private_replies = false, or add pattern to plugin.choria.security.privileged_users", true
		}
		return "node-side Choria Streams is off while plugin.choria.network.stream.private_replies = true; set it false to allow it, or add pattern to plugin.choria.security.privileged_users", true
	case inbox:
		return "consuming streams (a push consumer delivering to <collective>.reply.<nuid>, as kv watch does) is not a node's right: use the kv watcher's poll mode, or add pattern to plugin.choria.security.privileged_users", true
	case role == authz.Node && strings.HasPrefix(subject, "$JS.API.STREAM.MSG.GET."):
		return "nodes read KV buckets by direct get only: turn direct get on for the bucket (nats stream edit " + strings.TrimPrefix(subject, "$JS.API.STREAM.MSG.GET.") + " --allow-direct), or add pattern to plugin.choria.security.privileged_users", true
	default:
		return "only privileged certificates may do this with Choria Streams (go-choria's streams_admin): add pattern to plugin.choria.security.privileged_users", true
	}
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
		if b.srv.GetClient(k.(uint64)) == nil && b.srv.GetLeafNode(k.(uint64)) == nil {
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
