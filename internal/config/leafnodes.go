package config

import (
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// LeafRemote is one outbound leafnode link, go-choria's
// plugin.choria.network.leafnode_remote.NAME.* keys.
type LeafRemote struct {
	Name string
	// URLs are the hub's leafnode ports; the engine tries them in turn.
	URLs []*url.URL
	// Credentials is a NATS .creds file (user JWT and nkey seed) sent to a
	// hub that logs leafnodes in by JWT; a choria-broker hub goes by the
	// certificate and ignores it.
	Credentials string
	// TLSCert and TLSKey replace the broker's own certificate on this link,
	// TLSCA our CA bundle and CRL for checking the hub's.
	TLSCert, TLSKey, TLSCA string
	TLSVerify              bool // false: the hub's certificate is not checked at all
	TLSDisable             bool // true: no TLS on this link
}

// Key is the setting of property (url, tls.cert, ...) of this remote.
func (r LeafRemote) Key(property string) string { return LeafRemotePrefix + r.Name + "." + property }

// LeafRemotePrefix starts every per-remote key.
const LeafRemotePrefix = "plugin.choria.network.leafnode_remote."

// leafProperties are the per-remote keys, as go-choria reads them.
var leafProperties = []string{"url", "account", "credentials", "tls.cert", "tls.key", "tls.ca", "tls.verify", "tls.disable"}

// DefaultLeafPort is the port of a remote url written without one: the
// engine's leafnode port.
const DefaultLeafPort = "7422"

// LeafRemotes reads every remote plugin.choria.network.leafnode_remotes
// names, with go-choria's defaults. Every problem is reported, each with
// its key and file:line: a remote without url, a bad url, account or
// boolean, contradicting TLS keys, and per-remote keys nothing would read.
// It reads no file; LeafRemoteFiles checks those.
func (c *Config) LeafRemotes() ([]LeafRemote, error) {
	var errs []*Error
	var out []LeafRemote
	listed := map[string]bool{}
	for _, name := range c.Network.LeafnodeRemotes { // no name twice: checkRemoteNames
		listed[name] = true
		r, e := c.leafRemote(name)
		errs = append(errs, e...)
		out = append(out, r)
	}
	errs = append(errs, c.unreadLeafKeys(listed)...)
	for _, e := range errs {
		if e.File == "" && e.Line == 0 {
			e.File = c.File
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Config) leafRemote(name string) (LeafRemote, []*Error) {
	r := LeafRemote{Name: name, TLSVerify: true}
	var errs []*Error
	bad := func(property, value, msg string) {
		errs = append(errs, c.leafError(r.Key(property), value, msg))
	}
	get := func(property string) (string, bool) {
		v, ok := c.Raw[r.Key(property)]
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}

	if v, ok := get("url"); !ok {
		e := c.leafError("plugin.choria.network.leafnode_remotes", "", "remote "+name+" has no "+r.Key("url")+
			"; set it to the hub's leafnode port, such as hub.example.net:7422, or take "+name+" out of the list")
		errs = append(errs, e)
	} else {
		for _, item := range SplitList(v) {
			u, msg := parseLeafURL(item)
			if msg != "" {
				bad("url", redactURL(item), msg)
				continue
			}
			r.URLs = append(r.URLs, u)
		}
		if len(r.URLs) == 0 && len(errs) == 0 {
			bad("url", v, "no URL in the list; set host:port of the hub's leafnode port")
		}
		if ws := slices.IndexFunc(r.URLs, isWebsocketURL); ws >= 0 && slices.ContainsFunc(r.URLs, func(u *url.URL) bool { return !isWebsocketURL(u) }) {
			bad("url", redactURL(v), "mixes websocket (ws://, wss://) and leafnode URLs; a remote uses one kind: make a remote of each")
		}
	}
	if v, ok := get("account"); ok {
		switch {
		case strings.EqualFold(v, "choria"), v == "$G":
		default:
			bad("account", v, "this broker carries all Choria traffic in one account, which go-choria calls choria: write choria, or leave the setting out")
		}
	}
	if v, ok := get("credentials"); ok {
		r.Credentials = expandHome(v)
	}
	for _, f := range []struct {
		property string
		to       *string
	}{{"tls.cert", &r.TLSCert}, {"tls.key", &r.TLSKey}, {"tls.ca", &r.TLSCA}} {
		if v, ok := get(f.property); ok {
			*f.to = expandHome(v)
		}
	}
	for _, f := range []struct {
		property string
		to       *bool
	}{{"tls.verify", &r.TLSVerify}, {"tls.disable", &r.TLSDisable}} {
		if v, ok := get(f.property); ok {
			b, valid := remoteBool(v)
			if !valid {
				bad(f.property, v, "not a boolean (true/false, yes/no, on/off, 1/0)")
				continue
			}
			*f.to = b
		}
	}
	switch {
	case r.TLSCert != "" && r.TLSKey == "":
		bad("tls.cert", "", "set without "+r.Key("tls.key")+"; set both to present another certificate on this link, or neither to present the broker's own")
	case r.TLSKey != "" && r.TLSCert == "":
		bad("tls.key", "", "set without "+r.Key("tls.cert")+"; set both to present another certificate on this link, or neither to present the broker's own")
	}
	if r.TLSDisable {
		for _, p := range []string{"tls.cert", "tls.key", "tls.ca", "tls.verify"} {
			if _, ok := get(p); ok {
				bad(p, "", "set while "+r.Key("tls.disable")+" = true turns TLS off on this link; remove one of them")
			}
		}
	}
	return r, errs
}

// unreadLeafKeys refuses per-remote keys nothing would read: the config
// package accepts the whole family and leaves the properties to us.
func (c *Config) unreadLeafKeys(listed map[string]bool) []*Error {
	var keys []string
	for k := range c.Raw {
		if strings.HasPrefix(k, LeafRemotePrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs []*Error
	for _, k := range keys {
		name, prop, _ := strings.Cut(strings.TrimPrefix(k, LeafRemotePrefix), ".")
		switch {
		case !listed[name]:
			errs = append(errs, c.leafError(k, "", "remote "+name+" is not in plugin.choria.network.leafnode_remotes, so this setting would be ignored; add "+name+" to leafnode_remotes or remove its settings"))
		case !slices.Contains(leafProperties, prop):
			errs = append(errs, c.leafError(k, "", "unknown leafnode remote setting "+prop+"; a remote has "+strings.Join(leafProperties, ", ")))
		}
	}
	return errs
}

// parseLeafURL reads one url entry: host:port gets go-choria's scheme,
// leafnode://, and a host without a port the leafnode port.
func parseLeafURL(s string) (*url.URL, string) {
	const help = "not host:port or a leafnode://, nats-leaf://, tls://, ws:// or wss:// URL"
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "leafnode://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || strings.ContainsAny(u.Hostname(), " \t") || u.RawQuery != "" || u.Fragment != "" {
		return nil, help
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "nats-leaf", "leafnode", "nats", "tls":
		if u.Path != "" && u.Path != "/" {
			return nil, help + "; a leafnode URL has no path"
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), DefaultLeafPort)
		}
	case "ws", "wss":
		// The engine fills in 80 or 443 and keeps the path.
	default:
		return nil, help + "; unknown scheme " + u.Scheme
	}
	if p := u.Port(); p != "" {
		if _, ok := parsePort(p, false); !ok {
			return nil, help + "; the port must be 1-65535"
		}
	}
	return u, ""
}

func isWebsocketURL(u *url.URL) bool { return u.Scheme == "ws" || u.Scheme == "wss" }

// redactURL hides a password in a url, which may carry a hub's login.
func redactURL(s string) string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		raw, hadScheme := item, strings.Contains(item, "://")
		if !hadScheme {
			raw = "x://" + strings.TrimSpace(item)
		}
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			if _, set := u.User.Password(); set {
				r := u.Redacted()
				if !hadScheme {
					r = strings.TrimPrefix(r, "x://")
				}
				item = r
			}
		}
		out = append(out, strings.TrimSpace(item))
	}
	return strings.Join(out, ", ")
}

// LeafRemoteFiles checks the files the remotes name: each must be a
// readable file, and credentials must hold a user JWT and its seed. The
// certificate files' content is checked where they are loaded.
func (c *Config) LeafRemoteFiles(remotes []LeafRemote) error {
	var errs []*Error
	for _, r := range remotes {
		for _, f := range []struct{ property, path string }{
			{"credentials", r.Credentials}, {"tls.cert", r.TLSCert}, {"tls.key", r.TLSKey}, {"tls.ca", r.TLSCA},
		} {
			if f.path == "" {
				continue
			}
			data, msg := readSmallFile(f.path)
			if msg == "" && f.property == "credentials" {
				msg = checkCredentials(data)
			}
			if msg != "" {
				errs = append(errs, c.leafError(r.Key(f.property), f.path, msg))
			}
		}
	}
	for _, e := range errs {
		if e.File == "" && e.Line == 0 {
			e.File = c.File
		}
	}
	return joinErrors(errs)
}

// readSmallFile reads a credentials or certificate file; what is wrong
// says how to fix it.
func readSmallFile(path string) ([]byte, string) {
	fi, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
		return nil, "no such file; check the path"
	case err != nil:
		return nil, "cannot read: " + err.Error()
	case !fi.Mode().IsRegular():
		return nil, "not a regular file"
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsPermission(err) {
			return nil, "permission denied: the broker's user must be able to read it"
		}
		return nil, "cannot read: " + err.Error()
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize))
	if err != nil {
		return nil, "cannot read: " + err.Error()
	}
	return data, ""
}

// checkCredentials: a .creds file as nsc writes it, a user JWT and the
// user's nkey seed; the engine would only find out at each connect.
func checkCredentials(data []byte) string {
	const help = "not a NATS credentials file (a user JWT and its nkey seed, as nsc generate creds writes)"
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil || token == "" {
		return help
	}
	if _, err := jwt.DecodeUserClaims(token); err != nil {
		return help + ": the JWT is not a user's: " + err.Error()
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return help + ": no seed"
	}
	if _, err := kp.Seed(); err != nil {
		return help + ": no seed"
	}
	return ""
}

// leafError is KeyError with the value written, when it can be shown.
func (c *Config) leafError(key, value, msg string) *Error {
	e := c.KeyError(key, msg)
	e.Value = value
	return e
}
