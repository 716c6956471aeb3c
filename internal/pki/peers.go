package pki

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// NotPeer is a CA-signed certificate that is not one of the brokers this
// broker links with as routes.
const NotPeer Reason = "not a cluster peer"

// NotGateway is a CA-signed certificate that is not one of the remote
// clusters' gateways.
const NotGateway Reason = "not a gateway"

// NotLeaf is a CA-signed certificate that may not connect as a leafnode.
const NotLeaf Reason = "not a leafnode broker"

// PeerRule is who may link with this broker as a fellow broker: a
// certificate naming one of Hosts (CN, DNS SAN with TLS wildcards, IP SAN),
// or with a name matching one of Patterns. Being CA-signed is not enough,
// since every node's certificate is.
type PeerRule struct {
	Hosts    []string         // the configured peers' host names and addresses
	Patterns []*regexp.Regexp // extra certificate names, e.g. plugin.choria.network.cluster_brokers
	Setting  string           // the setting Patterns come from, for messages
	// Reason refuses the others (NotPeer when unset); What names Hosts in
	// messages ("a peer" when unset).
	Reason Reason
	What   string
}

// Match returns the host or pattern that admits leaf, or a refusal naming
// the certificate's names and what they were compared with.
func (r PeerRule) Match(leaf *x509.Certificate) (string, error) {
	if leaf == nil {
		return "", &RefusedError{Reason: NoCertificate}
	}
	for _, h := range r.Hosts {
		if CoversName(leaf, strings.TrimSuffix(h, ".")) {
			return h, nil
		}
	}
	names := slices.Compact(Names(leaf)) // the CN is usually the first DNS SAN too
	for _, p := range r.Patterns {
		for _, n := range names {
			if p.MatchString(n) {
				return p.String(), nil
			}
		}
	}
	patterns := "none"
	if len(r.Patterns) > 0 {
		var ps []string
		for _, p := range r.Patterns {
			ps = append(ps, p.String())
		}
		patterns = strings.Join(ps, ", ")
	}
	reason, what := r.Reason, r.What
	if reason == "" {
		reason = NotPeer
	}
	if what == "" {
		what = "a peer"
	}
	detail := fmt.Sprintf("its names %s are not %s (%s) nor match %s (%s)",
		strings.Join(names, ", "), what, strings.Join(r.Hosts, ", "), r.Setting, patterns)
	if len(r.Hosts) == 0 && r.What == "" {
		detail = fmt.Sprintf("its names %s match no pattern of %s (%s)", strings.Join(names, ", "), r.Setting, patterns)
	}
	return "", &RefusedError{Reason: reason, Subject: leaf.Subject.String(), Detail: detail}
}

// CompilePatterns compiles certificate name patterns as Choria writes
// them (optionally between slashes); errors name the setting and pattern.
func CompilePatterns(setting string, patterns []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if len(p) >= 2 && p[0] == '/' && p[len(p)-1] == '/' {
			p = p[1 : len(p)-1]
		}
		if p == "" {
			continue
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a valid regular expression: %v", setting, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}
