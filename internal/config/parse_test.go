package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGoChoriaBrokerConf: an existing go-choria broker.conf must load
// unchanged, with no warnings.
func TestGoChoriaBrokerConf(t *testing.T) {
	c, err := Load("testdata/go-choria-broker.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "testdata/go-choria-broker.conf"
	want.Files = []string{"testdata/go-choria-broker.conf"}
	want.Identity = "broker.example.net"
	want.MainCollective = "mcollective"
	want.LogFile = "/var/log/choria-broker.log"
	want.LogLevel = "info"
	want.BrokerNetwork = true
	want.Network.ListenAddress = "127.0.0.1"
	want.Network.ClientPort = 4222
	want.StatsPort = 8222
	want.UseSRV = false
	want.Security.Provider = "file"
	want.Security.FileCertificate = "/etc/choria/ssl/broker.example.net.pem"
	want.Security.FileKey = "/etc/choria/ssl/broker.example.net.key"
	want.Security.FileCA = "/etc/choria/ssl/ca.pem"
	want.Raw = c.Raw
	want.where = c.where
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if len(c.Raw) != 12 || c.Raw["plugin.choria.use_srv"] != "false" {
		t.Errorf("Raw = %v, want the 12 keys as written", c.Raw)
	}
}

func TestSyntax(t *testing.T) {
	c, err := Load("testdata/syntax.conf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		what string
		got  any
		want any
	}{
		{"trimmed key and value", c.Identity, "node1.example.net"},
		{"no spaces around =", c.LogLevel, "debug"},
		{"# after a value is part of it", c.Raw["plugin.choria.srv_domain"], "example.net # not a comment"},
		{"later list line replaces", c.MiddlewareHosts, []string{"c:4222"}},
		{"empty value ignored, quotes kept", c.StatsAddress, `"0.0.0.0"`},
		{"list items trimmed", c.Collectives, []string{"mcollective", "dev"}},
		{"main_collective from first collective", c.MainCollective, "mcollective"},
		{"value split at first = only", c.Raw["plugin.acme.colour"], "blue = green"},
		{"d unit", c.Network.WriteDeadline, 36 * time.Hour},
		{"defaults kept", c.Network.ClientPort, 4222},
		{"a key set twice is warned about", c.Warnings, []string{`testdata/syntax.conf:8: plugin.choria.middleware_hosts: set again here, first at testdata/syntax.conf:7; the last one wins, as in Choria: remove the one you do not mean`}},
		{"where a key was set", c.Where("plugin.choria.middleware_hosts"), "testdata/syntax.conf:8"},
		{"a default was set nowhere", c.Where("plugin.choria.network.client_port"), ""},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.what, tt.got, tt.want)
		}
	}
	if _, ok := c.Raw["plugin.choria.stats_address"]; !ok {
		t.Error("Raw lacks plugin.choria.stats_address")
	}
}

func TestParseListRemovesEmptyItems(t *testing.T) {
	c, err := Parse("x.conf", []byte("identity = a.b.c\nplugin.choria.middleware_hosts = a:1, , b:2 ,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:1", "b:2"}; !reflect.DeepEqual(c.MiddlewareHosts, want) {
		t.Errorf("got %q, want %q", c.MiddlewareHosts, want)
	}
}

func TestParseCRLFAndBOM(t *testing.T) {
	c, err := Parse("x.conf", []byte("\ufeffidentity = a.b.c\r\nplugin.choria.stats_port = 0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StatsPort != 0 || c.Identity != "a.b.c" {
		t.Errorf("got identity %q stats_port %d", c.Identity, c.StatsPort)
	}
}

func TestHomeExpansion(t *testing.T) {
	t.Setenv("HOME", "/home/rip")
	in := "identity = a.b.c\n" +
		"plugin.choria.ssldir = ~/ssl\n" +
		"logfile = ~\n" +
		"plugin.security.file.certificate = ~/c.pem\n" +
		"plugin.security.file.key = ~other/k.pem\n" +
		"plugin.security.file.ca = /etc/~/ca.pem\n" +
		"plugin.security.file.crl = ~/crl.pem\n" +
		"plugin.choria.srv_domain = ~/not/a/path\n"
	c, err := Parse("x.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ got, want string }{
		{c.Security.SSLDir, "/home/rip/ssl"},
		{c.LogFile, "/home/rip"},
		{c.Security.FileCertificate, "/home/rip/c.pem"},
		{c.Security.FileKey, "~other/k.pem"},
		{c.Security.FileCA, "/etc/~/ca.pem"},
		{c.Security.FileCRL, "/home/rip/crl.pem"},
		{c.Raw["plugin.choria.srv_domain"], "~/not/a/path"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestPluginDir(t *testing.T) {
	c, err := Load("testdata/plugind/broker.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.StatsPort != 1 {
		t.Errorf("stats_port = %d, want plugin.d/choria.cfg to override it with 1", c.StatsPort)
	}
	if c.Network.ClientPort != 4444 {
		t.Errorf("client_port = %d, want 4444", c.Network.ClientPort)
	}
	raw := map[string]string{
		"plugin.choria.network.peers": "nats://b1:5222, nats://b2:5222",
		"plugin.security.provider":    "puppet",
		"plugin.zz_other.colour":      "blue",
	}
	for k, want := range raw {
		if got := c.Raw[k]; got != want {
			t.Errorf("Raw[%q] = %q, want %q", k, got, want)
		}
	}
	wantFiles := []string{
		"testdata/plugind/broker.conf",
		filepath.Join("testdata/plugind/plugin.d", "choria.cfg"),
		filepath.Join("testdata/plugind/plugin.d", "security.conf"),
		filepath.Join("testdata/plugind/plugin.d", "zz_other.cfg"),
	}
	if !reflect.DeepEqual(c.Files, wantFiles) {
		t.Errorf("Files = %q, want %q", c.Files, wantFiles)
	}
}

func TestPluginDirErrorNamesItsFile(t *testing.T) {
	_, err := Load("testdata/plugind_bad/broker.conf")
	want := `testdata/plugind_bad/plugin.d/choria.cfg:2: plugin.choria.stats_port = "lots": not a port number (1-65535, or 0 to turn it off)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope/broker.conf")
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"testdata/nope/broker.conf", "choria-broker dev", "--config"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not mention %q", err, s)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("error does not wrap fs.ErrNotExist")
	}
}

// TestBroken: every problem names file, line (when it has one) and key,
// and says what is allowed.
func TestBroken(t *testing.T) {
	const dir = "testdata/broken/"
	tests := []struct {
		file string
		line int
		key  string
		want string // the first error, exactly
	}{
		{"port_range.conf", 2, "plugin.choria.network.client_port", `plugin.choria.network.client_port = "70000": not a port number (1-65535)`},
		{"port_not_number.conf", 2, "plugin.choria.network.client_port", `plugin.choria.network.client_port = "42x": not a port number (1-65535)`},
		{"client_port_zero.conf", 2, "plugin.choria.network.client_port", `plugin.choria.network.client_port = "0": not a port number (1-65535)`},
		{"stats_port_range.conf", 2, "plugin.choria.stats_port", `plugin.choria.stats_port = "65536": not a port number (1-65535, or 0 to turn it off)`},
		{"raw_key_bad_port.conf", 2, "plugin.choria.network.peer_port", `plugin.choria.network.peer_port = "5222x": not a port number (1-65535)`},
		{"bad_bool.conf", 3, "plugin.choria.use_srv", `plugin.choria.use_srv = "maybe": not a boolean (true/false, yes/no, y/n, t/f, 1/0)`},
		{"bad_duration.conf", 2, "plugin.choria.network.write_deadline", `plugin.choria.network.write_deadline = "10 seconds": ` + kindHelp[kDuration]},
		{"tls_timeout_big.conf", 2, "plugin.choria.network.tls_timeout", `plugin.choria.network.tls_timeout = "2m": must be more than 0s and at most 60s`},
		{"auth_timeout_zero.conf", 2, "plugin.choria.network.auth_timeout", `plugin.choria.network.auth_timeout = "0": must be more than 0s and at most 60s`},
		{"max_connections_negative.conf", 2, "plugin.choria.network.max_connections", `plugin.choria.network.max_connections = "-5": must be 1-10000000`},
		{"max_connections_huge.conf", 2, "plugin.choria.network.max_connections", `plugin.choria.network.max_connections = "9223372036854775807": must be 1-10000000`},
		{"handshake_limit_huge.conf", 2, "plugin.choria.network.handshake_limit", `plugin.choria.network.handshake_limit = "9223372036854775807": must be 0-1000000`},
		{"crl_refresh_tiny.conf", 2, "plugin.choria.security.crl_refresh_interval", `plugin.choria.security.crl_refresh_interval = "1ns": must be 0 (off) or at least 1s`},
		{"client_hosts_bad.conf", 3, "plugin.choria.network.client_hosts", `plugin.choria.network.client_hosts = "192.0.2.7, 10.0.0.0/33": "10.0.0.0/33" is not an address or CIDR such as 10.1.0.0/16 or 192.0.2.7`},
		{"listen_address_bad.conf", 2, "plugin.choria.network.listen_address", `plugin.choria.network.listen_address = "999.1.1.1": not an IP address or host name, such as 0.0.0.0, ::, 192.0.2.7 or broker.example.net`},
		{"listen_address_brackets.conf", 2, "plugin.choria.network.listen_address", `plugin.choria.network.listen_address = "[::1]": write an IPv6 address without brackets, such as ::1`},
		{"provider_foo.conf", 2, "plugin.security.provider", `plugin.security.provider = "foo": not one of puppet, file`},
		{"bad_regexp.conf", 2, "plugin.choria.security.certname_whitelist", `plugin.choria.security.certname_whitelist = "\.mcollective$, /(unclosed/": "/(unclosed/" is not a valid regular expression: error parsing regexp: missing closing ): ` + "`(unclosed`"},
		{"no_equals.conf", 3, "", `"plugin.choria.broker_network true": not a "key = value" line; comments start with #`},
		{"empty_key.conf", 2, "", `"= orphan value": no setting name before "="`},
		{"bad_public_url.conf", 2, "plugin.choria.network.public_url", `plugin.choria.network.public_url = "http://broker.example.net:4222": not host:port or nats://host:port`},
		{"bad_loglevel.conf", 2, "loglevel", `loglevel = "verbose": not one of debug, info, warn, error`},
		{"bad_collective_name.conf", 2, "collectives", `collectives = "mcollective, my.dev": collective "my.dev" may only contain letters, digits, "_" and "-"`},
		{"file_no_certificate.conf", 0, "plugin.security.file.certificate", `plugin.security.file.certificate: required when plugin.security.provider = file; set it, or use plugin.security.provider = puppet`},
		{"system_user_alone.conf", 2, "plugin.choria.network.system.user", `plugin.choria.network.system.user: set without plugin.choria.network.system.password; set both to allow system account logins, or neither`},
		{"system_password_alone.conf", 3, "plugin.choria.network.system.password", `plugin.choria.network.system.password: set without plugin.choria.network.system.user; set both to allow system account logins, or neither`},
		{"main_collective_unknown.conf", 0, "main_collective", `main_collective: "prod" is not one of collectives (mcollective, dev); add it to collectives or pick one of those`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := dir + tt.file
			c, err := Load(path)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Error("a config was returned with the error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%v is not a *config.Error", err)
			}
			loc := path + ":" + strconv.Itoa(tt.line) + ": "
			if tt.line == 0 {
				loc = path + ": "
			}
			if got := e.Error(); got != loc+tt.want {
				t.Errorf("got  %s\nwant %s", got, loc+tt.want)
			}
			if e.File != path || e.Line != tt.line || e.Key != tt.key {
				t.Errorf("File, Line, Key = %q, %d, %q; want %q, %d, %q", e.File, e.Line, e.Key, path, tt.line, tt.key)
			}
			if _, perr := Parse(path, mustRead(t, path)); perr == nil || perr.Error() != err.Error() {
				t.Errorf("Parse and Load disagree:\n%v\n%v", perr, err)
			}
		})
	}
}

// TestAllErrorsReported: one run shows every problem, in file order.
func TestAllErrorsReported(t *testing.T) {
	const path = "testdata/broken/many_errors.conf"
	_, err := Load(path)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		path + `:2: plugin.choria.network.client_port = "42x": not a port number (1-65535)`,
		path + `:3: plugin.choria.use_srv = "maybe": ` + kindHelp[kBool],
		path + `: plugin.security.file.certificate: required when`,
		path + `: plugin.security.file.key: required when`,
		path + `: plugin.security.file.ca: required when`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 {
		t.Errorf("first *Error = %+v, want line 2", e)
	}
}

// A bad value must not trigger cross-setting rules that would only see
// the default in its place.
func TestNoCrossRuleOnFailedKey(t *testing.T) {
	_, err := Parse("x.conf", []byte("identity = a.b.c\ncollectives = my.dev\nmain_collective = my.dev\n"))
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.HasPrefix(err.Error(), "x.conf:2: collectives") {
		t.Errorf("want only the collectives error, got %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
