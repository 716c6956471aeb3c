package config

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Per-setting rules used as setting.check. Each returns what is wrong and
// what is allowed, or "" when the value is fine.

// positive rejects zero and negative numbers and durations.
func positive(v any) string {
	switch v := v.(type) {
	case int:
		if v <= 0 {
			return "must be greater than 0"
		}
	case time.Duration:
		if v <= 0 {
			return "must be greater than 0"
		}
	}
	return ""
}

// upTo60s bounds the TLS and auth timeouts as go-choria does: nats-server
// gives up on a handshake after these, so 0 would refuse everyone.
func upTo60s(v any) string {
	if d := v.(time.Duration); d <= 0 || d > time.Minute {
		return "must be more than 0s and at most 60s"
	}
	return ""
}

var collectiveName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// checkCollectives: names end up in NATS subjects, so dots, spaces and
// wildcards would break routing.
func checkCollectives(v any) string {
	names := v.([]string)
	if len(names) == 0 {
		return "needs at least one collective, such as mcollective"
	}
	for _, n := range names {
		if !collectiveName.MatchString(n) {
			return `collective "` + n + `" may only contain letters, digits, "_" and "-"`
		}
	}
	return ""
}

// checkRegexps: certname patterns are Go regexps, optionally written
// /like this/ as in Choria.
func checkRegexps(v any) string {
	for _, p := range v.([]string) {
		if _, err := regexp.Compile(stripSlashes(p)); err != nil {
			return `"` + p + `" is not a valid regular expression: ` + err.Error()
		}
	}
	return ""
}

// stripSlashes removes the /.../ Choria allows around a pattern.
func stripSlashes(p string) string {
	if len(p) >= 2 && p[0] == '/' && p[len(p)-1] == '/' {
		return p[1 : len(p)-1]
	}
	return p
}

// checkPublicURL: the advertised address is handed to clients, so a typo
// here only shows up as clients failing to reconnect.
func checkPublicURL(v any) string {
	s := v.(string)
	if s == "" {
		return ""
	}
	const help = "not host:port or nats://host:port"
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "nats" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return help
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || strings.ContainsAny(host, " \t/") {
		return help
	}
	if _, ok := parsePort(port, false); !ok {
		return help + "; the port must be 1-65535"
	}
	return ""
}

// checkClusterName: the federation cluster is one token of NATS subjects
// and queue groups.
func checkClusterName(v any) string {
	if !collectiveName.MatchString(v.(string)) {
		return `may only contain letters, digits, "_" and "-"`
	}
	return ""
}

// between bounds a whole number. Limits feed arithmetic (descriptors to
// reserve, queue lengths), so a huge value must not overflow it.
func between(lo, hi int) func(any) string {
	return func(v any) string {
		if n := v.(int); n < lo || n > hi {
			return "must be " + strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
		}
		return ""
	}
}

// offOrAtLeast is for intervals where 0 turns the work off and a tiny one
// would hammer a remote service.
func offOrAtLeast(least time.Duration) func(any) string {
	return func(v any) string {
		if d := v.(time.Duration); d != 0 && d < least {
			return "must be 0 (off) or at least " + least.String()
		}
		return ""
	}
}

// checkClientHosts: the same rule internal/authz applies when the broker
// starts, here so that a mistake is reported with its line.
func checkClientHosts(v any) string {
	for _, h := range v.([]string) {
		if strings.Contains(h, "/") {
			if _, _, err := net.ParseCIDR(h); err == nil {
				continue
			}
		} else if net.ParseIP(h) != nil {
			continue
		}
		return `"` + h + `" is not an address or CIDR such as 10.1.0.0/16 or 192.0.2.7`
	}
	return ""
}

// checkListenAddress: the engine only finds out when it binds, after the
// certificates load and without the file's line.
func checkListenAddress(v any) string {
	s := v.(string)
	if s == "" {
		return "" // set by code: every address
	}
	if strings.HasPrefix(s, "[") {
		return "write an IPv6 address without brackets, such as ::1"
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	if !validHostname(s) {
		return "not an IP address or host name, such as 0.0.0.0, ::, 192.0.2.7 or broker.example.net"
	}
	return ""
}

var hostLabel = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// validHostname follows RFC 1123; a name whose last label is all digits
// would be a mistyped IPv4 address (999.1.1.1), not a name (RFC 3696).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return !isDigits(labels[len(labels)-1])
}

// checkDomain: the domain is one token of $JS.<domain>.API subjects.
func checkDomain(v any) string {
	if s := v.(string); s != "" && !collectiveName.MatchString(s) {
		return `may only contain letters, digits, "_" and "-"`
	}
	return ""
}

// checkHostPort: an address handed to clients as is, so a typo only
// shows up as clients failing to connect.
func checkHostPort(v any) string {
	s := v.(string)
	if s == "" {
		return ""
	}
	const help = "not host:port, such as nats1.example.net:443"
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " \t/") {
		return help
	}
	if _, ok := parsePort(port, false); !ok {
		return help + "; the port must be 1-65535"
	}
	return ""
}
