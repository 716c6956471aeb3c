package config

import (
	"net"
	"net/url"
	"regexp"
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

// zeroOrMore is for limits where 0 means "choose for me".
func zeroOrMore(v any) string {
	if n, ok := v.(int); ok && n < 0 {
		return "must be 0 (adapt to the machine) or more"
	}
	return ""
}
