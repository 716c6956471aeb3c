// Package authz decides what a connection may publish and subscribe from
// its verified certificate: Choria's security model, where client
// certificates are named like name.mcollective so that an ordinary node
// certificate cannot command the fleet, enforced at the broker.
package authz

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is what a connection may do.
type Role string

// Roles, from most to least trusted.
const (
	Privileged Role = "privileged"
	Federation Role = "federation"
	Client     Role = "client"
	Node       Role = "node"
	// Denied connections are refused (deny_server_connections for nodes).
	Denied Role = "denied"
	// Unrestricted is every connection when roles are switched off.
	Unrestricted Role = "unrestricted"
)

// Roles lists every role, in a stable order for reports.
var Roles = []Role{Privileged, Federation, Client, Node, Denied, Unrestricted}

// Policy holds the settings roles are decided from.
type Policy struct {
	Enabled     bool             // plugin.choria.network.roles; false gives everyone full rights
	Clients     []*regexp.Regexp // plugin.choria.security.certname_whitelist
	Privileged  []*regexp.Regexp // plugin.choria.security.privileged_users
	Federations []*regexp.Regexp // plugin.choria.network.federation_brokers
	// ClientHosts, when not empty, limits the client role to these
	// addresses (plugin.choria.network.client_hosts).
	ClientHosts []*net.IPNet
	DenyNodes   bool // plugin.choria.network.deny_server_connections
	// PrivateReplies is plugin.choria.network.stream.private_replies.
	PrivateReplies bool
}

// NewPolicy compiles the settings; errors name the setting and the bad entry.
func NewPolicy(enabled bool, clients, privileged, federations, clientHosts []string, denyNodes bool) (*Policy, error) {
	p := &Policy{Enabled: enabled, DenyNodes: denyNodes}
	var err error
	if p.Clients, err = compile("plugin.choria.security.certname_whitelist", clients); err != nil {
		return nil, err
	}
	if p.Privileged, err = compile("plugin.choria.security.privileged_users", privileged); err != nil {
		return nil, err
	}
	if p.Federations, err = compile("plugin.choria.network.federation_brokers", federations); err != nil {
		return nil, err
	}
	for _, h := range clientHosts {
		h = strings.TrimSpace(h)
		if !strings.Contains(h, "/") {
			if ip := net.ParseIP(h); ip != nil {
				bits := 32
				if ip.To4() == nil {
					bits = 128
				}
				h = fmt.Sprintf("%s/%d", h, bits)
			}
		}
		_, n, err := net.ParseCIDR(h)
		if err != nil {
			return nil, fmt.Errorf("plugin.choria.network.client_hosts: %q is not an address or CIDR such as 10.1.0.0/16", h)
		}
		p.ClientHosts = append(p.ClientHosts, n)
	}
	return p, nil
}

func compile(setting string, patterns []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range patterns {
		p = stripSlashes(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a regular expression: %v", setting, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// ExactPattern is a pattern for the name settings (federation_brokers,
// privileged_users) that matches name and nothing else.
func ExactPattern(name string) string {
	return "^" + regexp.QuoteMeta(name) + "$"
}

func matchAny(res []*regexp.Regexp, names []string) bool {
	for _, re := range res {
		for _, n := range names {
			if re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

// Decide returns the role of a connection whose verified certificate has
// names (CN first, then DNS SANs) and that comes from remote, with the
// names the role applies to.
func (p *Policy) Decide(names []string, remote net.IP) Role {
	switch {
	case !p.Enabled:
		return Unrestricted
	case matchAny(p.Privileged, names):
		return Privileged
	case matchAny(p.Federations, names):
		return Federation
	case matchAny(p.Clients, names) && p.clientHostAllowed(remote):
		return Client
	case p.DenyNodes:
		return Denied
	default:
		return Node
	}
}

func (p *Policy) clientHostAllowed(ip net.IP) bool {
	if len(p.ClientHosts) == 0 {
		return true
	}
	if ip == nil {
		return false
	}
	for _, n := range p.ClientHosts {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ReplyPrefixes are the reply subjects a caller may read: Choria's
// <collective>.reply.<md5hex(callerid)>.> and, under FIPS, the sha256 form.
func ReplyPrefixes(certname string) []string {
	return []string{md5ReplyPrefix(certname), sha256ReplyPrefix(certname)}
}

func md5ReplyPrefix(certname string) string {
	m := md5.Sum([]byte("choria=" + certname))
	return "*.reply." + hex.EncodeToString(m[:]) + ".>"
}

func sha256ReplyPrefix(certname string) string {
	s := sha256.Sum256([]byte("choria=" + certname))
	return "*.reply." + hex.EncodeToString(s[:]) + ".>"
}

// Request subjects: who may command the fleet.
var requestSubjects = []string{"*.broadcast.agent.>", "*.broadcast.service.>", "*.node.>", "choria.federation.*.federation"}

// Streams is what Choria Streams changes in the roles.
type Streams struct {
	On bool // JetStream runs: stream.store is set and usable
	// PrivateReplies (stream.private_replies) refuses the shared
	// JetStream inbox, which has the shape of client RPC replies.
	PrivateReplies bool
	// Domains adds each Streams right in its JetStream domain form,
	// $JS.<domain>.API.…: Streams behind a leafnode link, or a leaf's
	// plain requests mapped to its hub's domain.
	Domains bool
}

// inDomains is each $JS.API and $KV subject of subjects as any domain
// writes it, the form the engine maps to and from its own.
func inDomains(subjects []string) []string {
	var out []string
	for _, s := range subjects {
		switch {
		case strings.HasPrefix(s, "$JS.API."):
			out = append(out, "$JS.*.API."+strings.TrimPrefix(s, "$JS.API."))
		case strings.HasPrefix(s, "$KV."):
			out = append(out, "$JS.*.API."+s)
		}
	}
	return out
}

// SharedInbox is what go-choria's programs under mTLS receive JetStream
// replies on: <collective>.reply.<nuid>.<token> for requests and
// <collective>.reply.<nuid> for consumer deliveries. The first has the
// shape of client RPC replies, <collective>.reply.<md5>.<request id>, and
// a wildcard cannot tell them apart: whoever may subscribe it may read
// every client's replies.
var SharedInbox = []string{"*.reply.*.*", "*.reply.*"}

// clientStreams are go-choria's streams_user, governor and election_user
// groups. No stream create, update, purge or delete: a permission cannot
// say KV_* or GOVERNOR_*, and STREAM.CREATE.* would let a client make a
// stream on *.broadcast.agent.> and read, then replay, other clients'
// signed requests. Those stay with privileged certificates, as with
// go-choria's streams_admin.
var clientStreams = []string{
	"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
	"$JS.API.STREAM.INFO.*", "$JS.API.STREAM.MSG.GET.*", "$JS.API.STREAM.MSG.DELETE.*",
	"$JS.API.DIRECT.GET.*", "$JS.API.DIRECT.GET.*.>",
	"$JS.API.CONSUMER.CREATE.*", "$JS.API.CONSUMER.CREATE.*.>", "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
	"$JS.API.CONSUMER.DELETE.*.*", "$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*",
	"$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.MSG.NEXT.*.*",
	"$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>",
	"*.governor.*", "choria.lifecycle.event.governor.>",
}

// nodePublish is what every node may publish: replies, registration,
// lifecycle and machine events, federation replies.
var nodePublish = []string{
	"*.reply.>", "*.broadcast.agent.registration", "choria.lifecycle.>",
	"choria.machine.>", "choria.federation.*.collective",
}

// nodeStreams are what a stock go-choria server's KV watchers, plugins
// manager, governors, submission and gossip registration publish.
// Permissions match whole tokens, so KV_* is out of reach: KV reads are
// direct gets by a $KV subject, which no other stream holds, and
// STREAM.MSG.GET (any message of any stream) is left out.
var nodeStreams = []string{
	"$JS.API.STREAM.INFO.*", "$JS.API.DIRECT.GET.*.$KV.>",
	"*.governor.*", "$JS.API.STREAM.MSG.DELETE.*",
	"*.submission.in.>", "$KV.CHORIA_SERVICES.>",
}

// nodeStreamsDeny keeps the governors' message delete off the streams the
// broker manages; an operator's own streams can only be kept out by deny
// delete on the stream.
var nodeStreamsDeny = []string{
	"$JS.API.STREAM.MSG.DELETE.CHORIA_EVENTS", "$JS.API.STREAM.MSG.DELETE.CHORIA_MACHINE",
	"$JS.API.STREAM.MSG.DELETE.CHORIA_STREAM_ADVISORIES", "$JS.API.STREAM.MSG.DELETE.CHORIA_EXECUTOR",
}

// Permissions are the engine permissions of a role for a certificate's
// names, with Choria Streams as st says.
func Permissions(role Role, names []string, st Streams) *server.Permissions {
	switch role {
	case Privileged, Unrestricted:
		return nil // no restrictions
	case Client:
		var replies []string
		for _, n := range names {
			replies = append(replies, ReplyPrefixes(n)...)
		}
		pub := requestSubjects
		if st.On {
			// Under private replies a client reaches Streams with an
			// inbox prefix of its own reply subject.
			pub = append(slices.Clip(pub), clientStreams...)
			if st.Domains {
				pub = append(pub, inDomains(clientStreams)...)
			}
			if !st.PrivateReplies {
				replies = append(replies, SharedInbox...)
			}
		}
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: replies},
		}
	case Federation:
		// One set for both sides: on the federation network it reads
		// federated requests and writes replies to clients; on the
		// collective network it writes requests and reads node replies.
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"*.broadcast.agent.>", "*.broadcast.service.>", "*.node.>", "*.reply.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"choria.federation.*.federation", "choria.federation.*.collective"}},
		}
	case Node:
		// Broadcasts, and only its own direct subject: reading other
		// nodes' requests would let it replay a client's signed request
		// elsewhere within its TTL. Its own request/reply inbox, md5 form
		// only: every entry costs memory in each of 50 000 connections,
		// and servers under FIPS are not known to use one.
		// Built once per connect of every node: sized up front.
		subs := make([]string, 0, 3+2*len(names))
		subs = append(subs, "*.broadcast.agent.>", "*.broadcast.service.>")
		for _, n := range names {
			subs = append(subs, "*.node."+n)
		}
		for _, n := range names {
			subs = append(subs, md5ReplyPrefix(n))
		}
		// The engine copies what it is given, so the list is shared.
		pub := &server.SubjectPermission{Allow: nodePublish}
		// A node gets its JetStream replies only on the shared inbox, so
		// under private replies Streams is off for nodes altogether.
		if st.On && !st.PrivateReplies {
			pub.Allow = append(slices.Clip(nodePublish), nodeStreams...)
			pub.Deny = nodeStreamsDeny
			if st.Domains {
				pub.Allow = append(pub.Allow, inDomains(nodeStreams)...)
				pub.Deny = append(slices.Clip(pub.Deny), inDomains(nodeStreamsDeny)...)
			}
			subs = append(subs, SharedInbox[0]) // requests only: no KV watch by consumer
		}
		return &server.Permissions{
			Publish:   pub,
			Subscribe: &server.SubjectPermission{Allow: subs},
		}
	default: // Denied
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Deny: []string{">"}},
		}
	}
}
