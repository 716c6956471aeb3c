package config

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Default returns a configuration with every default applied, as if read
// from an empty file.
func Default() *Config {
	c := staticDefaults()
	deriveDefaults(c)
	return c
}

// staticDefaults applies the registry's written defaults.
func staticDefaults() *Config {
	c := &Config{Raw: map[string]string{}}
	for i := range settings {
		s := &settings[i]
		if s.field == nil || s.def == "" {
			continue
		}
		v, msg := s.convert(s.def)
		if msg != "" {
			panic("config: bad default for " + s.name + ": " + msg)
		}
		s.set(c, v)
	}
	return c
}

// deriveDefaults fills settings whose default depends on other settings
// or on the host, for keys the files did not set.
func deriveDefaults(c *Config) {
	for i := range settings {
		s := &settings[i]
		if s.derive == nil || s.field == nil {
			continue
		}
		if _, set := c.Raw[s.name]; set {
			continue
		}
		s.set(c, s.derive(c))
	}
}

func firstCollective(c *Config) string {
	if len(c.Collectives) == 0 {
		return ""
	}
	return c.Collectives[0]
}

// hostIdentity is Choria's default identity: the hostname when it is
// already fully qualified, else what the resolver calls it, else the
// hostname. It never fails: a broker must start on a badly named host.
func hostIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "localhost"
	}
	if strings.Count(host, ".") >= 2 {
		return host
	}
	// Bounded: a dead resolver must not stall start-up.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if name, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil {
		if name = strings.TrimSuffix(name, "."); strings.Contains(name, ".") {
			return name
		}
	}
	return host
}

// Where certificates live when plugin.choria.ssldir is not set. Variables
// so tests can point them at scratch directories.
var (
	// EnrollSSLDir is where choria-broker enroll keeps the broker's own
	// certificate, and where the broker looks for it first. The packages
	// make it the choria user's, so the service can renew its CRL there.
	EnrollSSLDir = "/var/lib/choria-broker/ssl"
	// PuppetSSLDir is Puppet's ssldir for this user.
	PuppetSSLDir = puppetSSLDir
)

// SSLDirOrDefault is the Puppet ssldir: plugin.choria.ssldir if set, else
// Puppet's own (see PuppetSSLDir). Client and node certificates are read
// there; the broker's own may instead be in EnrollSSLDir (pki.ResolveFiles).
func (c *Config) SSLDirOrDefault() string {
	if c.Security.SSLDir != "" {
		return c.Security.SSLDir
	}
	return PuppetSSLDir()
}

// puppetSSLDir is Puppet's system ssldir for root, else the user's own, as
// go-choria finds it (without asking Puppet).
func puppetSSLDir() string {
	const system = "/etc/puppetlabs/puppet/ssl"
	if os.Geteuid() == 0 {
		return system
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return system
	}
	return filepath.Join(home, ".puppetlabs", "etc", "puppet", "ssl")
}
