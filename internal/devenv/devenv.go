// Package devenv prepares the embedded default a new user runs: a
// development CA, certificates in a Puppet-style ssldir, and Choria
// broker.conf and client.conf files that use them.
package devenv

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/choria-broker/choria-broker/internal/limits"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Env is a prepared development environment.
type Env struct {
	Dir        string
	BrokerConf string
	ClientConf string
	ServerConf string // for emulated Choria servers: the ssldir's node certificates
	PKI        *pki.DevPKI
	ClientPort int
	StatsPort  int // 0: monitoring off
}

// Options choose where the development broker listens.
type Options struct {
	ClientPort int  // default 4222
	StatsPort  int  // default 8222
	StatsOff   bool // no monitoring (stats_port = 0), as "dev --stats-port 0" asks
}

// DefaultDir is where `choria-broker dev` keeps its files unless told otherwise.
func DefaultDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".choria-broker", "dev")
	}
	return filepath.Join(os.TempDir(), "choria-broker-dev")
}

// Prepare makes or reuses the CA and certificates in dir and (re)writes the
// two configuration files.
func Prepare(dir string, o Options) (*Env, error) {
	if o.ClientPort == 0 {
		o.ClientPort = 4222
	}
	if o.StatsOff {
		o.StatsPort = 0
	} else if o.StatsPort == 0 {
		o.StatsPort = 8222
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	host := hostname()
	p, err := pki.EnsureDevPKI(abs, host, userName())
	if err != nil {
		return nil, fmt.Errorf("development CA in %s: %w", abs, err)
	}
	e := &Env{Dir: abs, BrokerConf: filepath.Join(abs, "broker.conf"), ClientConf: filepath.Join(abs, "client.conf"), ServerConf: filepath.Join(abs, "server.conf"), PKI: p, ClientPort: o.ClientPort, StatsPort: o.StatsPort}
	broker := fmt.Sprintf(`# choria-broker development broker, written by "choria-broker dev".
# Everything here is a Choria setting; a production broker.conf looks the same
# with the Puppet ssldir in place of this development one.
identity = %s
loglevel = info
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
# What this machine's open-file hard limit (ulimit -Hn) allows without root.
plugin.choria.network.max_connections = %d
plugin.choria.stats_address = 127.0.0.1
plugin.choria.stats_port = %d
plugin.choria.use_srv = false
plugin.security.provider = puppet
plugin.choria.ssldir = %s
`, host, o.ClientPort, MaxConnections(), o.StatsPort, p.SSLDir)
	client := fmt.Sprintf(`# Choria client settings for the development broker, written by "choria-broker dev".
collectives = mcollective
main_collective = mcollective
plugin.choria.middleware_hosts = nats://127.0.0.1:%d
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
`, o.ClientPort, p.CertFile(p.Client), p.KeyFile(p.Client), p.CAFile())
	server := fmt.Sprintf(`# Choria server settings for emulated nodes, written by "choria-broker dev".
collectives = mcollective
main_collective = mcollective
plugin.choria.middleware_hosts = nats://127.0.0.1:%d
plugin.choria.use_srv = false
plugin.security.provider = puppet
plugin.choria.ssldir = %s
`, o.ClientPort, p.SSLDir)
	for path, text := range map[string]string{e.BrokerConf: broker, e.ClientConf: client, e.ServerConf: server} {
		if err := pki.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// MaxConnections is the development broker's max_connections: the
// production default where the open-file hard limit allows it, else what
// the limit leaves after the broker's own files, so that run can raise its
// limit without root and need not warn at every start.
func MaxConnections() int {
	const def, reserve = 50000, 1024 // config's default; what run adds for files and listeners
	hard, err := limits.HardNoFile()
	if err != nil || hard >= def+reserve {
		return def
	}
	return max(int(hard)-reserve, 100)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.ToLower(h)
}

// userName is the login name, which names the client certificate as Choria does.
func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "choria"
}
