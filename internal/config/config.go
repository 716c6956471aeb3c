// Package config reads Choria's key = value configuration files into one
// typed struct. Setting names and defaults follow go-choria so that an
// existing /etc/choria/broker.conf keeps working.
package config

import "time"

// Config is every setting the broker, its fleet tools and its checks use.
// Defaults are applied by Parse and Load; Validate enforces the rules.
type Config struct {
	// File is the main configuration file this was read from ("" when parsed from memory).
	File string
	// Files lists every file read, the main file first, then plugin.d in
	// order, so that a reload can watch them all.
	Files []string

	Identity string // identity
	LogFile  string // logfile ("" or "stdout"/"stderr" mean the terminal)
	LogLevel string // loglevel: debug, info, warn, error

	Collectives    []string // collectives
	MainCollective string   // main_collective (default: first collective)

	UseSRV          bool     // plugin.choria.use_srv
	SRVDomain       string   // plugin.choria.srv_domain
	MiddlewareHosts []string // plugin.choria.middleware_hosts

	BrokerNetwork bool // plugin.choria.broker_network
	Network       Network

	BrokerFederation bool // plugin.choria.broker_federation
	Federation       Federation

	StatsAddress string // plugin.choria.stats_address
	StatsPort    int    // plugin.choria.stats_port (0 turns monitoring off)

	Security Security

	// Raw holds every key as read, last value wins, so that settings of
	// plugins we do not know can still be looked up.
	Raw map[string]string

	// Warnings are problems that do not stop the broker, such as a
	// misspelt key; each names file and line.
	Warnings []string

	// Unsupported are settings the files set that the broker accepts but
	// does not act on: go-choria features not built yet, which run and
	// preflight refuse (Refused), and harmless ones they warn about
	// (Ignored). Loading never fails on them.
	Unsupported []Unsupported
	// Unknown names, with file and line, keys that are neither known nor
	// a likely misspelling: a plugin's, or a mistake preflight points out.
	Unknown []string

	// where is the file:line that set each key last, for messages.
	where map[string]string
}

// Where is the file:line that set key, or "" when it has its default.
func (c *Config) Where(key string) string { return c.where[key] }

// Network holds plugin.choria.network.* settings of the network broker.
type Network struct {
	ListenAddress  string        // plugin.choria.network.listen_address
	ClientPort     int           // plugin.choria.network.client_port
	WriteDeadline  time.Duration // plugin.choria.network.write_deadline
	TLSTimeout     time.Duration // plugin.choria.network.tls_timeout
	AuthTimeout    time.Duration // plugin.choria.network.auth_timeout
	PublicURL      string        // plugin.choria.network.public_url
	MaxConnections int           // plugin.choria.network.max_connections (ours)

	Peers        []string // plugin.choria.network.peers: every member, this broker included
	PeerPort     int      // plugin.choria.network.peer_port (ours defaults to 4223)
	PeerUser     string   // plugin.choria.network.peer_user
	PeerPassword string   // plugin.choria.network.peer_password
	PeerTLS      bool     // plugin.choria.network.peer_tls (ours): mutual TLS on routes
	ClusterName  string   // plugin.choria.network.gateway_name
	// ClusterBrokers is plugin.choria.network.cluster_brokers (ours):
	// certificate name patterns accepted as routes besides the peers' names.
	ClusterBrokers []string

	LeafnodePort    int      // plugin.choria.network.leafnode_port: inbound leafnodes, 0 = none
	LeafnodeRemotes []string // plugin.choria.network.leafnode_remotes: outbound links, read by LeafRemotes
	// LeafnodeBrokers is plugin.choria.network.leafnode_brokers (ours):
	// certificate name patterns that may connect as leafnodes.
	LeafnodeBrokers []string
	// WebsocketPort (plugin.choria.network.websocket_port, 0 = off) takes
	// wss:// connections on ListenAddress; WebsocketAdvertise is the
	// host:port the cluster tells websocket clients.
	WebsocketPort      int
	WebsocketAdvertise string

	GatewayPort    int      // plugin.choria.network.gateway_port: 0 = no gateways
	GatewayRemotes []string // plugin.choria.network.gateway_remotes: remote cluster names
	// GatewayBrokers is plugin.choria.network.gateway_brokers (ours):
	// certificate name patterns accepted as gateways besides the remotes' hosts.
	GatewayBrokers []string
	// Gateways are the remotes with their gateway_remote.NAME.* settings,
	// in gateway_remotes order.
	Gateways []GatewayRemote

	PprofPort          int           // plugin.choria.network.pprof_port: Go profiling on 127.0.0.1, 0 = off
	HandshakeAdmission bool          // plugin.choria.network.handshake_admission (ours): bound TLS handshakes in flight
	HandshakeLimit     int           // plugin.choria.network.handshake_limit (ours): 0 adapts to the machine
	LameDuckDuration   time.Duration // plugin.choria.network.lame_duck_duration (ours): spread disconnects over this
	LameDuckGrace      time.Duration // plugin.choria.network.lame_duck_grace (ours): wait before the first disconnect

	Roles                 bool     // plugin.choria.network.roles (ours): per-role rights; false is go-choria's unrestricted x509 access
	FederationBrokers     []string // plugin.choria.network.federation_brokers (ours): certname patterns of federation brokers
	ClientHosts           []string // plugin.choria.network.client_hosts: addresses and CIDRs the client role is limited to
	DenyServerConnections bool     // plugin.choria.network.deny_server_connections

	// SystemUser and SystemPassword (plugin.choria.network.system.*) log
	// a client certificate into the engine's system account; both or neither.
	SystemUser     string
	SystemPassword string

	// MappingNames is plugin.choria.network.mapping.names; Mappings are
	// the pairs they name, in that order, read from mapping.NAME.source
	// and .destination (mapping.go).
	MappingNames []string
	Mappings     []Mapping

	Stream Stream
}

// Stream holds plugin.choria.network.stream.* (Choria Streams, the
// engine's JetStream). A retention of 0 leaves that stream unmanaged; a
// replicas count of -1 is the cluster's size, at most 3.
type Stream struct {
	Store                  string        // stream.store: "" = Streams off
	ManageStreams          bool          // stream.manage_streams
	EventRetention         time.Duration // stream.event_retention: CHORIA_EVENTS
	MachineRetention       time.Duration // stream.machine_retention: CHORIA_MACHINE
	AdvisoryRetention      time.Duration // stream.advisory_retention: CHORIA_STREAM_ADVISORIES
	ExecutorRetention      time.Duration // stream.executor_retention: CHORIA_EXECUTOR
	LeaderElectionTTL      time.Duration // stream.leader_election_ttl: KV_CHORIA_LEADER_ELECTION
	EventReplicas          int
	MachineReplicas        int
	AdvisoryReplicas       int
	ExecutorReplicas       int
	LeaderElectionReplicas int
	MaxMemory              string // stream.max_memory (ours): bytes with a unit, or a % of RAM
	MaxStore               string // stream.max_store (ours): bytes with a unit, or a % of the free disk
	PrivateReplies         bool   // stream.private_replies (ours): no shared JetStream inbox for clients and nodes
	// Domain is stream.domain (ours): with a store, this broker's
	// JetStream domain; without, the hub's, reached over leafnodes.
	Domain string
}

// Federation holds the federation broker's settings; its collective side
// uses MiddlewareHosts.
type Federation struct {
	Cluster         string   // plugin.choria.federation.cluster
	MiddlewareHosts []string // plugin.choria.federation_middleware_hosts
	// Collectives is plugin.choria.federation.collectives, a client's (and
	// a server's) setting: set, it publishes through these federations and
	// connects to MiddlewareHosts instead of plugin.choria.middleware_hosts.
	Collectives []string
}

// Security holds the security provider settings.
type Security struct {
	Provider string // plugin.security.provider: puppet or file
	SSLDir   string // plugin.choria.ssldir

	FileCertificate string // plugin.security.file.certificate
	FileKey         string // plugin.security.file.key
	FileCA          string // plugin.security.file.ca
	FileCRL         string // plugin.security.file.crl (ours)

	// PuppetCAHost is plugin.choria.puppetca_host. Set, the broker fetches
	// the CRL from that CA every CRLRefreshInterval; enroll defaults it to
	// puppet, as Choria does.
	PuppetCAHost       string
	PuppetCAPort       int           // plugin.choria.puppetca_port
	CRLRefreshInterval time.Duration // plugin.choria.security.crl_refresh_interval (ours); 0 turns refresh off
	CRLDisconnect      bool          // plugin.choria.security.crl_disconnect (ours): close connections whose certificate a new CRL revokes
	EnrollNames        []string      // plugin.choria.security.enroll_names (ours): extra names for the enrolled certificate

	CipherSuites []string // plugin.security.cipher_suites: TLS 1.2 suites, Go's names; empty keeps Go's defaults
	ECCCurves    []string // plugin.security.ecc_curves: key exchanges such as X25519, CurveP256; empty keeps Go's defaults

	CertnameWhitelist []string // plugin.choria.security.certname_whitelist
	PrivilegedUsers   []string // plugin.choria.security.privileged_users
}
