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
	// support is what the broker does with the key; a go-choria feature
	// becomes supported by deleting support and about from its entry.
	support support
	about   string // refused: the feature, as README lists it; ignored: why it is harmless
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
	{name: "plugin.choria.network.listen_address", kind: kString, def: "::", check: checkListenAddress, field: func(c *Config) any { return &c.Network.ListenAddress }},
	{name: "plugin.choria.network.client_port", kind: kPort, def: "4222", field: func(c *Config) any { return &c.Network.ClientPort }},
	{name: "plugin.choria.network.write_deadline", kind: kDuration, def: "10s", check: positive, field: func(c *Config) any { return &c.Network.WriteDeadline }},
	{name: "plugin.choria.network.tls_timeout", kind: kDuration, def: "2s", check: upTo60s, field: func(c *Config) any { return &c.Network.TLSTimeout }},
	{name: "plugin.choria.network.auth_timeout", kind: kDuration, def: "2s", check: upTo60s, field: func(c *Config) any { return &c.Network.AuthTimeout }},
	{name: "plugin.choria.network.public_url", kind: kString, check: checkPublicURL, field: func(c *Config) any { return &c.Network.PublicURL }},
	{name: "plugin.choria.network.max_connections", kind: kInt, def: "50000", check: between(1, 10_000_000), field: func(c *Config) any { return &c.Network.MaxConnections }},
	// cluster: peers default to port 4223, the seed's; go-choria uses 5222
	{name: "plugin.choria.network.peers", kind: kList, field: func(c *Config) any { return &c.Network.Peers }},
	{name: "plugin.choria.network.peer_port", kind: kPort, def: "4223", field: func(c *Config) any { return &c.Network.PeerPort }},
	{name: "plugin.choria.network.peer_user", kind: kString, field: func(c *Config) any { return &c.Network.PeerUser }},
	{name: "plugin.choria.network.peer_password", kind: kString, field: func(c *Config) any { return &c.Network.PeerPassword }},
	{name: "plugin.choria.network.peer_tls", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.PeerTLS }},
	// routes are taken only from certificates naming a peer, or matching these
	{name: "plugin.choria.network.cluster_brokers", kind: kList, check: checkRegexps, field: func(c *Config) any { return &c.Network.ClusterBrokers }},
	{name: "plugin.choria.network.gateway_name", kind: kString, def: "CHORIA", field: func(c *Config) any { return &c.Network.ClusterName }},
	// leafnodes: see internal/broker/leafnode.go; the per-remote keys are
	// read and checked by LeafRemotes (leafnodes.go)
	{name: "plugin.choria.network.leafnode_port", kind: kPortOff, def: "0", field: func(c *Config) any { return &c.Network.LeafnodePort }},
	{name: "plugin.choria.network.leafnode_remotes", kind: kList, check: checkRemoteNames, field: func(c *Config) any { return &c.Network.LeafnodeRemotes }},
	{name: "plugin.choria.network.leafnode_remote.*", kind: kString},
	// ours: only certificates matching these may connect as leafnodes
	{name: "plugin.choria.network.leafnode_brokers", kind: kList, check: checkRegexps, field: func(c *Config) any { return &c.Network.LeafnodeBrokers }},
	// websockets: wss:// with the client port's admission, see internal/broker/websocket.go
	{name: "plugin.choria.network.websocket_port", kind: kPortOff, def: "0", field: func(c *Config) any { return &c.Network.WebsocketPort }},
	{name: "plugin.choria.network.websocket_advertise", kind: kString, check: checkHostPort, field: func(c *Config) any { return &c.Network.WebsocketAdvertise }},
	// subject mappings in the client account: see mapping.go and internal/broker/mapping.go
	{name: "plugin.choria.network.mapping.names", kind: kList, field: func(c *Config) any { return &c.Network.MappingNames }},
	{name: "plugin.choria.network.mapping.*", kind: kString},
	// gateways: see internal/broker/gateway.go; per-remote keys in gateways.go
	{name: "plugin.choria.network.gateway_port", kind: kPortOff, def: "0", field: func(c *Config) any { return &c.Network.GatewayPort }},
	{name: "plugin.choria.network.gateway_remotes", kind: kList, check: checkRemoteNames, field: func(c *Config) any { return &c.Network.GatewayRemotes }},
	{name: "plugin.choria.network.gateway_remote.*", kind: kString},
	// ours: gateways are taken only from certificates naming a remote's host, or matching these
	{name: "plugin.choria.network.gateway_brokers", kind: kList, check: checkRegexps, field: func(c *Config) any { return &c.Network.GatewayBrokers }},
	// reconnect storms and restarts: see internal/broker/gate.go
	{name: "plugin.choria.network.handshake_admission", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.HandshakeAdmission }},
	{name: "plugin.choria.network.handshake_limit", kind: kInt, def: "0", check: between(0, 1_000_000), field: func(c *Config) any { return &c.Network.HandshakeLimit }},
	{name: "plugin.choria.network.lame_duck_duration", kind: kDuration, def: "30s", check: positive, field: func(c *Config) any { return &c.Network.LameDuckDuration }},
	{name: "plugin.choria.network.lame_duck_grace", kind: kDuration, def: "2s", field: func(c *Config) any { return &c.Network.LameDuckGrace }},
	// who may do what: see internal/authz
	{name: "plugin.choria.network.roles", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.Roles }},
	{name: "plugin.choria.network.federation_brokers", kind: kList, check: checkRegexps, field: func(c *Config) any { return &c.Network.FederationBrokers }},
	{name: "plugin.choria.network.client_hosts", kind: kList, check: checkClientHosts, field: func(c *Config) any { return &c.Network.ClientHosts }},
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
	// and never reported as misspellings. Refused keys stop run and
	// preflight (see support.go); ignored ones are warned about.
	{name: "plugin.choria.network.connect_timeout", kind: kDuration, def: "2s", support: ignored, about: otherProgram},
	{name: "plugin.choria.network.client_tls_force_required", kind: kBool, support: ignored, about: "TLS with a client certificate is always required here"},
	{name: "plugin.choria.network.client_anon_tls", kind: kBool, support: refused, about: featJWT},
	{name: "plugin.choria.network.client_signer_cert", kind: kPath, support: refused, about: featJWT},
	{name: "plugin.choria.network.server_signer_cert", kind: kPath, support: refused, about: featJWT},
	{name: "plugin.choria.network.soft_shutdown_timeout", kind: kDuration, def: "60", support: ignored, about: "this broker stops at once on SIGTERM; SIGUSR2 moves clients off first (lame_duck_duration)"},
	{name: "plugin.choria.network.pprof_port", kind: kPortOff, def: "0", field: func(c *Config) any { return &c.Network.PprofPort }},
	{name: "plugin.choria.network.operator_account", kind: kString, support: ignored, about: obsolete},
	{name: "plugin.choria.network.system_account", kind: kString, support: ignored, about: obsolete},
	{name: "plugin.choria.network.system.user", kind: kString, field: func(c *Config) any { return &c.Network.SystemUser }},
	{name: "plugin.choria.network.system.password", kind: kString, field: func(c *Config) any { return &c.Network.SystemPassword }},
	{name: "plugin.choria.network.provisioning.client_password", kind: kString, support: refused, about: featProvisioning},
	{name: "plugin.choria.network.provisioning.signer_cert", kind: kPath, support: refused, about: featProvisioning},
	{name: "plugin.choria.network.provisioning.provisioner_without_token", kind: kBool, support: refused, about: featProvisioning},
	// Choria Streams: see internal/broker/jetstream.go
	{name: "plugin.choria.network.stream.store", kind: kPath, field: func(c *Config) any { return &c.Network.Stream.Store }},
	{name: "plugin.choria.network.stream.manage_streams", kind: kBool, def: "true", field: func(c *Config) any { return &c.Network.Stream.ManageStreams }},
	{name: "plugin.choria.network.stream.event_retention", kind: kDuration, def: "24h", field: func(c *Config) any { return &c.Network.Stream.EventRetention }},
	{name: "plugin.choria.network.stream.machine_retention", kind: kDuration, def: "24h", field: func(c *Config) any { return &c.Network.Stream.MachineRetention }},
	{name: "plugin.choria.network.stream.executor_retention", kind: kDuration, def: "24h", field: func(c *Config) any { return &c.Network.Stream.ExecutorRetention }},
	{name: "plugin.choria.network.stream.advisory_retention", kind: kDuration, def: "168h", field: func(c *Config) any { return &c.Network.Stream.AdvisoryRetention }},
	{name: "plugin.choria.network.stream.leader_election_ttl", kind: kDuration, def: "1m", check: positive, field: func(c *Config) any { return &c.Network.Stream.LeaderElectionTTL }},
	{name: "plugin.choria.network.stream.event_replicas", kind: kInt, def: "-1", check: checkReplicas, field: func(c *Config) any { return &c.Network.Stream.EventReplicas }},
	{name: "plugin.choria.network.stream.machine_replicas", kind: kInt, def: "-1", check: checkReplicas, field: func(c *Config) any { return &c.Network.Stream.MachineReplicas }},
	{name: "plugin.choria.network.stream.advisory_replicas", kind: kInt, def: "-1", check: checkReplicas, field: func(c *Config) any { return &c.Network.Stream.AdvisoryReplicas }},
	{name: "plugin.choria.network.stream.executor_replicas", kind: kInt, def: "-1", check: checkReplicas, field: func(c *Config) any { return &c.Network.Stream.ExecutorReplicas }},
	{name: "plugin.choria.network.stream.leader_election_replicas", kind: kInt, def: "-1", check: checkReplicas, field: func(c *Config) any { return &c.Network.Stream.LeaderElectionReplicas }},
	// ours: the engine's JetStream limits; go-choria leaves the engine's 75% of RAM
	{name: "plugin.choria.network.stream.max_memory", kind: kString, def: "25%", check: checkStreamSize, field: func(c *Config) any { return &c.Network.Stream.MaxMemory }},
	// ours: refuse the shared JetStream inbox, see authz.SharedInbox
	{name: "plugin.choria.network.stream.private_replies", kind: kBool, def: "false", field: func(c *Config) any { return &c.Network.Stream.PrivateReplies }},
	{name: "plugin.choria.network.stream.max_store", kind: kString, def: "90%", check: checkStreamSize, field: func(c *Config) any { return &c.Network.Stream.MaxStore }},
	// ours: the JetStream domain, see internal/broker/leafnode.go
	{name: "plugin.choria.network.stream.domain", kind: kString, check: checkDomain, field: func(c *Config) any { return &c.Network.Stream.Domain }},
	{name: "plugin.choria.federation.collectives", kind: kList, field: func(c *Config) any { return &c.Federation.Collectives }},
	{name: "plugin.choria.randomize_middleware_hosts", kind: kBool, support: ignored, about: otherProgram},
	// the Puppet CA: enrolment, and CRL refresh when the host is set
	{name: "plugin.choria.puppetca_host", kind: kString, field: func(c *Config) any { return &c.Security.PuppetCAHost }},
	{name: "plugin.choria.puppetca_port", kind: kPort, def: "8140", field: func(c *Config) any { return &c.Security.PuppetCAPort }},
	{name: "plugin.choria.security.crl_refresh_interval", kind: kDuration, def: "5m", check: offOrAtLeast(time.Second), field: func(c *Config) any { return &c.Security.CRLRefreshInterval }},
	{name: "plugin.choria.security.crl_disconnect", kind: kBool, def: "true", field: func(c *Config) any { return &c.Security.CRLDisconnect }},
	{name: "plugin.choria.security.enroll_names", kind: kList, field: func(c *Config) any { return &c.Security.EnrollNames }},
	{name: "plugin.choria.puppetserver_host", kind: kString, support: ignored, about: otherProgram},
	{name: "plugin.choria.puppetserver_port", kind: kPort, support: ignored, about: otherProgram},
	{name: "plugin.choria.puppetdb_host", kind: kString, support: ignored, about: otherProgram},
	{name: "plugin.choria.puppetdb_port", kind: kPort, support: ignored, about: otherProgram},
	{name: "plugin.choria.server.provision", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.choria.require_client_filter", kind: kBool, support: ignored, about: otherProgram},
	// adapters: internal/adapter reads and checks them from Raw
	{name: "plugin.choria.adapters", kind: kList},
	{name: "plugin.choria.adapter.*", kind: kString},
	{name: "plugin.choria.status_file_path", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.status_update_interval", kind: kDuration, support: ignored, about: otherProgram},
	{name: "plugin.choria.machine.store", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.prometheus_textfile_directory", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.legacy_lifecycle_format", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.choria.agent_provider.mcorpc.agent_shim", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.agent_provider.mcorpc.config", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.agent_provider.mcorpc.libdir", kind: kString, support: ignored, about: otherProgram},
	{name: "plugin.choria.registration.file_content.data", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.registration.file_content.target", kind: kString, support: ignored, about: otherProgram},
	{name: "plugin.choria.registration.file_content.compression", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.choria.security.request_signer.token_file", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.choria.security.request_signer.url", kind: kString, support: ignored, about: otherProgram},
	{name: "plugin.choria.security.request_signing_certificate", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.security.always_overwrite_cache", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.security.support_legacy_certificates", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.security.client_anon_tls", kind: kBool, support: ignored, about: otherProgram},
	{name: "plugin.security.file.cache", kind: kPath, support: ignored, about: otherProgram},
	{name: "plugin.security.cipher_suites", kind: kList, check: checkCipherSuites, field: func(c *Config) any { return &c.Security.CipherSuites }},
	{name: "plugin.security.ecc_curves", kind: kList, check: checkCurves, field: func(c *Config) any { return &c.Security.ECCCurves }},
	{name: "plugin.security.issuer.names", kind: kList, support: refused, about: featJWT},
	{name: "plugin.security.issuer.*", kind: kString, support: refused, about: featJWT},
	{name: "plugin.nats.user", kind: kString, support: ignored, about: natsLogin},
	{name: "plugin.nats.pass", kind: kString, support: ignored, about: natsLogin},
	{name: "plugin.nats.credentials", kind: kPath, support: ignored, about: natsLogin},
	{name: "registration", kind: kList, support: ignored, about: otherProgram},
	{name: "registerinterval", kind: kInt, def: "300", support: ignored, about: otherProgram},
	{name: "registration_collective", kind: kString, support: ignored, about: otherProgram},
	{name: "registration_splay", kind: kBool, support: ignored, about: otherProgram},
	{name: "classesfile", kind: kPath, def: "/opt/puppetlabs/puppet/cache/state/classes.txt", support: ignored, about: otherProgram},
	{name: "plugin.yaml", kind: kPath, support: ignored, about: otherProgram},
	{name: "ttl", kind: kInt, def: "60", support: ignored, about: otherProgram},
	{name: "discovery_timeout", kind: kInt, def: "2", support: ignored, about: otherProgram},
	{name: "publish_timeout", kind: kInt, support: ignored, about: otherProgram},
	{name: "connection_timeout", kind: kInt, support: ignored, about: otherProgram},
	{name: "default_discovery_method", kind: kString, def: "mc", support: ignored, about: otherProgram},
	{name: "default_discovery_options", kind: kString, support: ignored, about: otherProgram},
	{name: "rpcaudit", kind: kBool, support: ignored, about: otherProgram},
	{name: "rpcauditprovider", kind: kString, support: ignored, about: otherProgram},
	{name: "rpcauthorization", kind: kBool, def: "true", support: ignored, about: otherProgram},
	{name: "rpcauthprovider", kind: kString, def: "action_policy", support: ignored, about: otherProgram},
	{name: "rpclimitmethod", kind: kString, support: ignored, about: otherProgram},
	{name: "libdir", kind: kString, support: ignored, about: otherProgram},
	{name: "logger_type", kind: kString, support: ignored, about: otherProgram},
	{name: "direct_addressing", kind: kBool, support: ignored, about: otherProgram},
	{name: "color", kind: kBool, support: ignored, about: otherProgram},
	{name: "connector", kind: kString, support: ignored, about: otherProgram},
	{name: "securityprovider", kind: kString, support: ignored, about: otherProgram},
	{name: "threaded", kind: kBool, support: ignored, about: otherProgram},
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
		v = SplitList(text)
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
