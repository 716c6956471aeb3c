package fleet

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol"
)

// Credentials are what a fleet tool connects and signs with, read from a
// Choria client or server configuration.
type Credentials struct {
	Servers     []string
	Cert        *pki.KeyPair // client: the signing certificate
	NodeCerts   []*pki.KeyPair
	CA          []*x509.Certificate
	Trust       *pki.Trust
	Identity    string
	Collectives []string
	// Federations are the federation collectives a federated client
	// publishes through (plugin.choria.federation.collectives or
	// CHORIA_FED_COLLECTIVE); set, Servers are the federation's brokers.
	Federations []string
	// NodeCA is the CA of a development or benchmark ssldir (one that
	// keeps the CA's key): an emulated fleet then gives each node a
	// certificate of its own name, as real nodes have.
	NodeCA              *pki.CA
	Allowed, Privileged []string
}

// clientCertname is the certname a Choria client uses with the puppet
// provider: MCOLLECTIVE_CERTNAME, else <user>.mcollective.
func clientCertname() string {
	if c := os.Getenv("MCOLLECTIVE_CERTNAME"); c != "" {
		return c
	}
	u := os.Getenv("USER")
	if u == "" {
		u = "root"
	}
	return u + ".mcollective"
}

// LoadCredentials reads servers, CA, CRL and certificates from cfg. With
// nodes, every node certificate of the ssldir is loaded for an emulated
// fleet; otherwise the client certificate.
func LoadCredentials(cfg *config.Config, nodes bool) (*Credentials, error) {
	c := &Credentials{
		Servers:     ServerURLs(cfg.MiddlewareHosts),
		Identity:    cfg.Identity,
		Collectives: cfg.Collectives,
		Allowed:     cfg.Security.CertnameWhitelist,
		Privileged:  cfg.Security.PrivilegedUsers,
	}
	c.Federations = federationCollectives(cfg)
	switch {
	case len(c.Federations) > 0:
		// A federated client talks to the federation network only; Choria
		// has no puppet:4222 fallback there.
		c.Servers = ServerURLs(cfg.Federation.MiddlewareHosts)
	case len(c.Servers) == 0:
		c.Servers = []string{"nats://puppet:4222"} // Choria's default without SRV
	}
	files := pki.ResolveFiles(cfg)
	if files.Provider == "puppet" && !nodes {
		name := clientCertname()
		dir := cfg.SSLDirOrDefault()
		files.Certificate = filepath.Join(dir, "certs", name+".pem")
		files.Key = filepath.Join(dir, "private_keys", name+".pem")
	}
	trust, warn, err := pki.LoadTrust(files, time.Now())
	if err != nil {
		return nil, err
	}
	_ = warn // tools work without a CRL; the broker is what enforces it
	c.Trust, c.CA = trust, trust.CAs
	if nodes && files.Provider == "puppet" {
		c.NodeCerts, err = nodeCertsIn(cfg.SSLDirOrDefault(), trust, c.Allowed)
		if err != nil {
			return nil, err
		}
		if c.NodeCA, err = pki.SSLDirCA(cfg.SSLDirOrDefault()); err != nil {
			return nil, err
		}
		return c, nil
	}
	kp, err := pki.LoadKeyPair(files.Certificate, files.Key)
	if err != nil {
		return nil, err
	}
	c.Cert, c.NodeCerts = kp, []*pki.KeyPair{kp}
	if c.Identity == "" {
		c.Identity = kp.Leaf().Subject.CommonName
	}
	return c, nil
}

// federationCollectives is what makes a Choria client federated, as
// go-choria reads it: CHORIA_FED_COLLECTIVE (comma separated) before
// plugin.choria.federation.collectives.
func federationCollectives(cfg *config.Config) []string {
	env := os.Getenv("CHORIA_FED_COLLECTIVE")
	if env == "" {
		return cfg.Federation.Collectives
	}
	return config.SplitList(env)
}

// ApplyTo fills what a ping connects and signs with from the credentials;
// federations only when o names none.
func (c *Credentials) ApplyTo(o *PingOptions) {
	o.Servers, o.Cert, o.CA, o.Identity = c.Servers, c.Cert, c.CA, c.Identity
	if o.Collective == "" && len(c.Collectives) > 0 {
		o.Collective = c.Collectives[0]
	}
	if len(o.Federations) == 0 {
		o.Federations = c.Federations
	}
}

// EmulatorOptions are an emulated fleet's options from the credentials.
func (c *Credentials) EmulatorOptions(nodes int) EmulatorOptions {
	return EmulatorOptions{
		Servers: c.Servers, Nodes: nodes, Certs: c.NodeCerts, IssueCA: c.NodeCA, CA: c.CA, Trust: c.Trust,
		Allowed: c.Allowed, Privileged: c.Privileged, Collectives: c.Collectives,
	}
}

// nodeCertsIn loads every usable node certificate of a Puppet ssldir: one
// with its key, valid, not revoked and not named like a client.
func nodeCertsIn(ssldir string, trust *pki.Trust, clientPatterns []string) ([]*pki.KeyPair, error) {
	clients, err := protocol.CompilePatterns("plugin.choria.security.certname_whitelist", clientPatterns)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(ssldir, "certs", "*.pem"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*pki.KeyPair
	now := time.Now()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pem")
		if name == "ca" || matches(clients, name) {
			continue
		}
		kp, err := pki.LoadKeyPair(f, filepath.Join(ssldir, "private_keys", name+".pem"))
		if err != nil {
			continue // a certificate without its key is someone else's
		}
		if trust.VerifyClient(kp.Chain, now) != nil {
			continue
		}
		out = append(out, kp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no usable node certificate (certs/<name>.pem with private_keys/<name>.pem, valid, not revoked, not a client name)", ssldir)
	}
	return out, nil
}

func matches(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
