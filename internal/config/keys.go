package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// setting declares one known key. Adding a setting means adding one entry
// to the settings table below; parsing, defaults, Validate and misspelling
// warnings all work from that table.
type setting struct {
	name string
	kind kind
	def  string // default, written as in a config file ("" = none)
	// derive computes the default from other settings or the host when the
	// key was not set; it runs after all files are read.
	derive func(*Config) string
	// field points into Config; nil keeps the key in Raw only, but its
	// value is still type-checked.
	field func(*Config) any
	// check is an extra rule on the converted value; it returns what is
	// wrong and what is allowed, or "".
	check func(any) string
	enum  *enum // for kEnum
}

// settings is every key we know. It is built once and never changed.
var settings = []setting{
	// core
	{name: "identity", kind: kString, derive: func(*Config) string { return hostIdentity() }, field: func(c *Config) any { return &c.Identity }},
	{name: "logfile", kind: kPath, field: func(c *Config) any { return &c.LogFile }},
	{name: "loglevel", kind: kEnum, def: "info", enum: enumOf("debug", "info", "warn", "error", "warning=warn", "fatal=error"), field: func(c *Config) any { return &c.LogLevel }},
	{name: "collectives", kind: kList, def: "mcollective", check: checkCollectives, field: func(c *Config) any { return &c.Collectives }},
	{name: "main_collective", kind: kString, derive: firstCollective, field: func(c *Config) any { return &c.MainCollective }},

	// middleware and the network broker
	{name: "plugin.choria.use_srv", kind: kBool, def: "true", field: func(c *Config) any { return &c.UseSRV }},
	{name: "plugin.choria.middleware_hosts", kind: kList, field: func(c *Config) any { return &c.MiddlewareHosts }},
	{name: "plugin.choria.broker_network", kind: kBool, def: "false", field: func(c *Config) any { return &c.BrokerNetwork }},
	{name: "plugin.choria.network.listen_address", kind: kString, def: "::", field: func(c *Config) any { return &c.Network.ListenAddress }},
	{name: "plugin.choria.network.client_port", kind: kPort, def: "4222", field: func(c *Config) any { return &c.Network.ClientPort }},
	{name: "plugin.choria.network.write_deadline", kind: kDuration, def: "10s", check: positive, field: func(c *Config) any { return &c.Network.WriteDeadline }},
	{name: "plugin.choria.network.tls_timeout", kind: kDuration, def: "2s", check: upTo60s, field: func(c *Config) any { return &c.Network.TLSTimeout }},
	{name: "plugin.choria.network.auth_timeout", kind: kDuration, def: "2s", check: upTo60s, field: func(c *Config) any { return &c.Network.AuthTimeout }},
	{name: "plugin.choria.network.public_url", kind: kString, check: checkPublicURL, field: func(c *Config) any { return &c.Network.PublicURL }},
	{name: "plugin.choria.network.max_connections", kind: kInt, def: "50000", check: positive, field: func(c *Config) any { return &c.Network.MaxConnections }},
	// cluster: peers default to port 4223, the seed's; go-choria uses 5222
	{name: "plugin.choria.network.peers", kind: kList, field: func(c *Config) any { return &c.Network.Peers }},
	{name: "plugin.choria.network.peer_port", kind: kPort, def: "4223", field: func(c *Config) any { return &c.Network.PeerPort }},
	{name: "plugin.choria.network.peer_user", kind: kString, field: func(c *Config) any { return &c.Network.PeerUser }},
	{name: "plugin.choria.network.peer_password", kind: kString, field: func(c *Config) any { return &c.Network.PeerPassword }},
	{name: "plugin.choria.network.peer_tls", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.PeerTLS }},
	{name: "plugin.choria.network.gateway_name", kind: kString, def: "CHORIA", field: func(c *Config) any { return &c.Network.ClusterName }},
	// reconnect storms and restarts: see internal/broker/gate.go
	{name: "plugin.choria.network.handshake_admission", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.HandshakeAdmission }},
	{name: "plugin.choria.network.handshake_limit", kind: kInt, def: "0", check: zeroOrMore, field: func(c *Config) any { return &c.Network.HandshakeLimit }},
	{name: "plugin.choria.network.lame_duck_duration", kind: kDuration, def: "30s", check: positive, field: func(c *Config) any { return &c.Network.LameDuckDuration }},
	{name: "plugin.choria.network.lame_duck_grace", kind: kDuration, def: "2s", field: func(c *Config) any { return &c.Network.LameDuckGrace }},
	// who may do what: see internal/authz
	{name: "plugin.choria.network.roles", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.Roles }},
	{name: "plugin.choria.network.federation_brokers", kind: kList, check: checkRegexps, field: func(c *Config) any { return &c.Network.FederationBrokers }},
	{name: "plugin.choria.network.client_hosts", kind: kList, field: func(c *Config) any { return &c.Network.ClientHosts }},
	{name: "plugin.choria.network.deny_server_connections", kind: kBool, def: "false", field: func(c *Config) any { return &c.Network.DenyServerConnections }},
	{name: "plugin.choria.srv_domain", kind: kString, field: func(c *Config) any { return &c.SRVDomain }},
	{name: "plugin.choria.broker_federation", kind: kBool, def: "false", field: func(c *Config) any { return &c.BrokerFederation }},
	{name: "plugin.choria.federation.cluster", kind: kString, def: "mcollective", check: checkClusterName, field: func(c *Config) any { return &c.Federation.Cluster }},
	{name: "plugin.choria.federation_middleware_hosts", kind: kList, field: func(c *Config) any { return &c.Federation.MiddlewareHosts }},
	{name: "plugin.choria.stats_address", kind: kString, def: "127.0.0.1", field: func(c *Config) any { return &c.StatsAddress }},
	{name: "plugin.choria.stats_port", kind: kPortOff, def: "8222", field: func(c *Config) any { return &c.StatsPort }},

	// security
	{name: "plugin.security.provider", kind: kEnum, def: "puppet", enum: enumOf("puppet", "file"), field: func(c *Config) any { return &c.Security.Provider }},
	{name: "plugin.choria.ssldir", kind: kPath, field: func(c *Config) any { return &c.Security.SSLDir }},
	{name: "plugin.security.file.certificate", kind: kPath, field: func(c *Config) any { return &c.Security.FileCertificate }},
	{name: "plugin.security.file.key", kind: kPath, field: func(c *Config) any { return &c.Security.FileKey }},
	{name: "plugin.security.file.ca", kind: kPath, field: func(c *Config) any { return &c.Security.FileCA }},
	{name: "plugin.security.file.crl", kind: kPath, field: func(c *Config) any { return &c.Security.FileCRL }},
	{name: "plugin.choria.security.certname_whitelist", kind: kList, def: `\.mcollective$,\.choria$`, check: checkRegexps, field: func(c *Config) any { return &c.Security.CertnameWhitelist }},
	{name: "plugin.choria.security.privileged_users", kind: kList, def: `\.privileged.mcollective$,\.privileged.choria$`, check: checkRegexps, field: func(c *Config) any { return &c.Security.PrivilegedUsers }},

	// Known go-choria keys we do not use yet: kept in Raw, type-checked,
	// and never reported as misspellings.
	{name: "plugin.choria.network.gateway_port", kind: kPortOff},
	{name: "plugin.choria.network.gateway_remotes", kind: kList},
	{name: "plugin.choria.network.leafnode_port", kind: kPortOff},
	{name: "plugin.choria.network.leafnode_remotes", kind: kList},
	{name: "plugin.choria.network.websocket_port", kind: kPortOff},
	{name: "plugin.choria.network.websocket_advertise", kind: kString},
	{name: "plugin.choria.network.connect_timeout", kind: kDuration, def: "2s"},
	{name: "plugin.choria.network.client_tls_force_required", kind: kBool},
	{name: "plugin.choria.network.client_anon_tls", kind: kBool},
	{name: "plugin.choria.network.client_signer_cert", kind: kPath},
	{name: "plugin.choria.network.server_signer_cert", kind: kPath},
	{name: "plugin.choria.network.soft_shutdown_timeout", kind: kDuration, def: "60"},
	{name: "plugin.choria.network.pprof_port", kind: kPortOff, def: "0", field: func(c *Config) any { return &c.Network.PprofPort }},
	{name: "plugin.choria.network.operator_account", kind: kString},
	{name: "plugin.choria.network.system_account", kind: kString},
	{name: "plugin.choria.network.system.user", kind: kString},
	{name: "plugin.choria.network.system.password", kind: kString},
	{name: "plugin.choria.network.mapping.names", kind: kList},
	{name: "plugin.choria.network.provisioning.client_password", kind: kString},
	{name: "plugin.choria.network.provisioning.signer_cert", kind: kPath},
	{name: "plugin.choria.network.provisioning.provisioner_without_token", kind: kBool},
	{name: "plugin.choria.network.stream.store", kind: kPath},
	{name: "plugin.choria.network.stream.event_retention", kind: kDuration, def: "24h"},
	{name: "plugin.choria.network.stream.machine_retention", kind: kDuration, def: "24h"},
	{name: "plugin.choria.network.stream.executor_retention", kind: kDuration, def: "24h"},
	{name: "plugin.choria.network.stream.advisory_retention", kind: kDuration, def: "168h"},
	{name: "plugin.choria.network.stream.event_replicas", kind: kInt},
	{name: "plugin.choria.network.stream.machine_replicas", kind: kInt},
	{name: "plugin.choria.network.stream.advisory_replicas", kind: kInt},
	{name: "plugin.choria.network.stream.leader_election_ttl", kind: kDuration, def: "1m"},
	{name: "plugin.choria.network.stream.manage_streams", kind: kBool, def: "true"},
	{name: "plugin.choria.federation.collectives", kind: kList, field: func(c *Config) any { return &c.Federation.Collectives }},
	{name: "plugin.choria.randomize_middleware_hosts", kind: kBool},
	// the Puppet CA: enrolment, and CRL refresh when the host is set
	{name: "plugin.choria.puppetca_host", kind: kString, field: func(c *Config) any { return &c.Security.PuppetCAHost }},
	{name: "plugin.choria.puppetca_port", kind: kPort, def: "8140", field: func(c *Config) any { return &c.Security.PuppetCAPort }},
	{name: "plugin.choria.security.crl_refresh_interval", kind: kDuration, def: "5m", field: func(c *Config) any { return &c.Security.CRLRefreshInterval }},
	{name: "plugin.choria.security.crl_disconnect", kind: kBool, def: "true", field: func(c *Config) any { return &c.Security.CRLDisconnect }},
	{name: "plugin.choria.security.enroll_names", kind: kList, field: func(c *Config) any { return &c.Security.EnrollNames }},
	{name: "plugin.choria.puppetserver_host", kind: kString},
	{name: "plugin.choria.puppetserver_port", kind: kPort},
	{name: "plugin.choria.puppetdb_host", kind: kString},
	{name: "plugin.choria.puppetdb_port", kind: kPort},
	{name: "plugin.choria.server.provision", kind: kBool},
	{name: "plugin.choria.require_client_filter", kind: kBool},
	{name: "plugin.choria.adapters", kind: kList},
	{name: "plugin.choria.status_file_path", kind: kPath},
	{name: "plugin.choria.status_update_interval", kind: kDuration},
	{name: "plugin.choria.machine.store", kind: kPath},
	{name: "plugin.choria.prometheus_textfile_directory", kind: kPath},
	{name: "plugin.choria.legacy_lifecycle_format", kind: kBool},
	{name: "plugin.choria.agent_provider.mcorpc.agent_shim", kind: kPath},
	{name: "plugin.choria.agent_provider.mcorpc.config", kind: kPath},
	{name: "plugin.choria.agent_provider.mcorpc.libdir", kind: kString},
	{name: "plugin.choria.registration.file_content.data", kind: kPath},
	{name: "plugin.choria.registration.file_content.target", kind: kString},
	{name: "plugin.choria.registration.file_content.compression", kind: kBool},
	{name: "plugin.choria.security.request_signer.token_file", kind: kPath},
	{name: "plugin.choria.security.request_signer.url", kind: kString},
	{name: "plugin.choria.security.request_signing_certificate", kind: kPath},
	{name: "plugin.security.always_overwrite_cache", kind: kBool},
	{name: "plugin.security.support_legacy_certificates", kind: kBool},
	{name: "plugin.security.client_anon_tls", kind: kBool},
	{name: "plugin.security.file.cache", kind: kPath},
	{name: "plugin.security.cipher_suites", kind: kList},
	{name: "plugin.security.ecc_curves", kind: kList},
	{name: "plugin.security.issuer.names", kind: kList},
	{name: "plugin.nats.user", kind: kString},
	{name: "plugin.nats.pass", kind: kString},
	{name: "plugin.nats.credentials", kind: kPath},
	{name: "registration", kind: kList},
	{name: "registerinterval", kind: kInt, def: "300"},
	{name: "registration_collective", kind: kString},
	{name: "registration_splay", kind: kBool},
	{name: "classesfile", kind: kPath, def: "/opt/puppetlabs/puppet/cache/state/classes.txt"},
	{name: "plugin.yaml", kind: kPath},
	{name: "ttl", kind: kInt, def: "60"},
	{name: "discovery_timeout", kind: kInt, def: "2"},
	{name: "publish_timeout", kind: kInt},
	{name: "connection_timeout", kind: kInt},
	{name: "default_discovery_method", kind: kString, def: "mc"},
	{name: "default_discovery_options", kind: kString},
	{name: "rpcaudit", kind: kBool},
	{name: "rpcauditprovider", kind: kString},
	{name: "rpcauthorization", kind: kBool, def: "true"},
	{name: "rpcauthprovider", kind: kString, def: "action_policy"},
	{name: "rpclimitmethod", kind: kString},
	{name: "libdir", kind: kString},
	{name: "logger_type", kind: kString},
	{name: "direct_addressing", kind: kBool},
	{name: "color", kind: kBool},
	{name: "connector", kind: kString},
	{name: "securityprovider", kind: kString},
	{name: "threaded", kind: kBool},
}

// renamed maps keys that do not exist but are commonly written to the key
// meant; they get a warning even though they are far from any known key.
var renamed = map[string]struct{ to, why string }{
	// The packaged broker.conf template mentions it; Choria never read it.
	"plugin.choria.network.monitor_port": {"plugin.choria.stats_port", "a name from Choria's packaged broker.conf that Choria never reads"},
}

// known indexes settings by name; built once at start-up.
var known = func() map[string]*setting {
	m := make(map[string]*setting, len(settings))
	for i := range settings {
		s := &settings[i]
		if _, dup := m[s.name]; dup {
			panic("config: setting declared twice: " + s.name)
		}
		m[s.name] = s
	}
	return m
}()

// convert turns text from a file into the setting's typed value; on
// failure it returns what is wrong and what is allowed.
func (s *setting) convert(text string) (any, string) {
	var v any
	ok := true
	switch s.kind {
	case kString:
		v = text
	case kPath:
		v = expandHome(text)
	case kEnum:
		v, ok = s.enum.lookup(text)
		if !ok {
			return nil, s.enum.help()
		}
	case kBool:
		v, ok = parseBool(text)
	case kInt:
		v, ok = parseInt(text)
	case kPort, kPortOff:
		v, ok = parsePort(text, s.kind == kPortOff)
	case kDuration:
		v, ok = parseDuration(text)
	case kList:
		v = splitList(text)
	default:
		panic(fmt.Sprintf("config: %s has unknown kind %d", s.name, s.kind))
	}
	if !ok {
		return nil, kindHelp[s.kind]
	}
	if s.check != nil {
		if msg := s.check(v); msg != "" {
			return nil, msg
		}
	}
	return v, ""
}

// verify applies the same rules as convert to a value already in Config,
// so that Validate catches values set by code (flags, tests).
func (s *setting) verify(v any) string {
	switch s.kind {
	case kEnum:
		if _, ok := s.enum.lookup(v.(string)); !ok {
			return s.enum.help()
		}
	case kPort, kPortOff:
		if n := v.(int); n < 0 || n > 65535 || (n == 0 && s.kind == kPort) {
			return kindHelp[s.kind]
		}
	case kDuration:
		if v.(time.Duration) < 0 {
			return kindHelp[s.kind]
		}
	}
	if s.check != nil {
		return s.check(v)
	}
	return ""
}

// get reads the setting's field; the dynamic type follows the kind.
func (s *setting) get(c *Config) any {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *bool:
		return *p
	case *int:
		return *p
	case *time.Duration:
		return *p
	case *[]string:
		return *p
	}
	panic("config: unsupported field type for " + s.name)
}

// set stores a converted value; a kind that does not match the field's
// type is a programming error caught by the registry test.
func (s *setting) set(c *Config, v any) {
	switch p := s.field(c).(type) {
	case *string:
		*p = v.(string)
	case *bool:
		*p = v.(bool)
	case *int:
		*p = v.(int)
	case *time.Duration:
		*p = v.(time.Duration)
	case *[]string:
		*p = v.([]string)
	default:
		panic("config: unsupported field type for " + s.name)
	}
}

// show formats a typed value the way it would be written in a file.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case time.Duration:
		return v.String()
	case []string:
		return strings.Join(v, ", ")
	}
	return fmt.Sprint(v)
}
