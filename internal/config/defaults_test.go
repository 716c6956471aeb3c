package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		key  string
		want any
	}{
		{"logfile", ""},
		{"loglevel", "info"},
		{"collectives", []string{"mcollective"}},
		{"main_collective", "mcollective"},
		{"plugin.choria.use_srv", true},
		{"plugin.choria.middleware_hosts", []string(nil)},
		{"plugin.choria.broker_network", false},
		{"plugin.choria.network.listen_address", "::"},
		{"plugin.choria.network.client_port", 4222},
		{"plugin.choria.network.write_deadline", 10 * time.Second},
		{"plugin.choria.network.tls_timeout", 2 * time.Second},
		{"plugin.choria.network.auth_timeout", 2 * time.Second},
		{"plugin.choria.network.public_url", ""},
		{"plugin.choria.network.max_connections", 50000},
		{"plugin.choria.stats_address", "127.0.0.1"},
		{"plugin.choria.stats_port", 8222},
		{"plugin.security.provider", "puppet"},
		{"plugin.choria.ssldir", ""},
		{"plugin.security.file.certificate", ""},
		{"plugin.security.file.key", ""},
		{"plugin.security.file.ca", ""},
		{"plugin.security.file.crl", ""},
		{"plugin.choria.security.certname_whitelist", []string{`\.mcollective$`, `\.choria$`}},
		{"plugin.choria.security.privileged_users", []string{`\.privileged.mcollective$`, `\.privileged.choria$`}},
	}
	for _, tt := range tests {
		if got := known[tt.key].get(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
		}
	}
	if c.Identity == "" {
		t.Error("no default identity")
	}
	if c.Raw == nil || len(c.Raw) != 0 {
		t.Errorf("Raw = %#v, want empty", c.Raw)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDefaultIdentity(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	id := hostIdentity()
	if strings.Count(host, ".") >= 2 && id != host {
		t.Errorf("identity %q, want the fully qualified hostname %q", id, host)
	}
	if id == "" {
		t.Error("empty identity")
	}
}

func TestSSLDirOrDefault(t *testing.T) {
	t.Setenv("HOME", "/home/rip")
	c := Default()
	want := "/home/rip/.puppetlabs/etc/puppet/ssl"
	if os.Geteuid() == 0 {
		want = "/etc/puppetlabs/puppet/ssl"
	}
	if got := c.SSLDirOrDefault(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c.Security.SSLDir = "/ssl"
	if got := c.SSLDirOrDefault(); got != "/ssl" {
		t.Errorf("got %q, want /ssl", got)
	}
}
