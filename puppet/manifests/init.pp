# @summary A choria-broker: the NATS middleware of a Choria fleet, secured by the Puppet CA.
#
# Installs the choria-broker package, writes /etc/choria/broker.conf, copies the
# node's Puppet certificate where the unprivileged choria user can read it, and
# runs the service (systemd, upstart or sysvinit). A single broker needs no
# parameters; a cluster lists its members in servers.
#
# @example A single broker, on the Puppet server (resolvable as "puppet")
#   class { 'choria_broker': }
#
# @example A leaf broker in a branch site, joined to the hub's leafnode port
#   class { 'choria_broker':
#     cluster_name     => 'BRANCH1',
#     leafnode_remotes => { 'hub' => { 'url' => ['nats1.example.net:7422', 'nats2.example.net:7422'] } },
#   }
#
# @example A cluster of 5: the same on each member
#   class { 'choria_broker':
#     routes_password => 'Vrph54FBcIvdM',
#     servers         => ['nats1.example.net', 'nats2.example.net', 'nats3.example.net',
#                         'nats4.example.net', 'nats5.example.net'],
#   }
#
# @param servers
#   Certnames of every member of the cluster, this one included (3 or 5). Empty for a single broker.
# @param routes_password
#   The password cluster members use on their routes (plugin.choria.network.peer_password).
# @param routes_user
#   The user name that goes with routes_password.
# @param manage_collectd
#   Install a collectd curl_json snippet that polls the broker's /varz (needs monitor_port).
# @param client_port
#   Port for Choria clients and servers (plugin.choria.network.client_port).
# @param cluster_port
#   Port for routes between cluster members (plugin.choria.network.peer_port).
# @param monitor_port
#   Port of the monitoring HTTP server, NATS /varz and friends (plugin.choria.stats_port); 0 turns it off.
# @param listen_address
#   Address the client and cluster ports listen on.
# @param monitor_address
#   Address the monitoring port listens on.
# @param manage_sysctl
#   Raise the kernel's listen backlogs (the sysctl hash) so a reconnecting fleet is not throttled.
# @param sysctl
#   Kernel settings for manage_sysctl; a value below the kernel's current one is raised to it, never lowered.
# @param manage_package
#   Install the choria-broker package.
# @param package_name
#   Name of the package.
# @param package_ensure
#   ensure of the package: present, latest or a version.
# @param manage_service
#   Run the service, restarting it (through lame duck) when broker.conf changes and
#   reloading it when the certificate changes.
# @param service_ensure
#   running or stopped.
# @param service_enable
#   Start the service at boot.
# @param service_provider
#   The init system: systemd, upstart or sysvinit; detected by the choria_broker fact.
# @param manage_user
#   Create the user and group (the package does it when manage_package is true).
# @param user
#   The unprivileged user the broker runs as.
# @param group
#   The broker's group.
# @param identity
#   The broker's certname; its certificate and key in ssldir are found by it.
# @param ssldir
#   Puppet's ssldir on the node (puppet config print ssldir).
# @param copy_ssl
#   Copy ca.pem, the broker's certificate and key, and crl.pem from ssldir into ssl_copy_dir,
#   owned by user, and point the broker there. Off: the broker reads ssldir itself, which
#   user must then be able to read.
# @param ssl_copy_dir
#   Where copy_ssl puts the certificates, in Puppet's layout.
# @param config_dir
#   Directory of broker.conf.
# @param root
#   A staging directory: every file is written under it and every path in the files points
#   under it, and nothing is applied to the running system (no sysctl -p, no daemon-reload).
#   For tests and images; manage_package and manage_service must then be false.
# @param binary
#   Path of the choria-broker program.
# @param log_level
#   loglevel in broker.conf: debug, info, warn or error.
# @param logfile
#   The broker's log file; by default the journal (systemd), upstart's log, or
#   /var/log/choria/broker.log (sysvinit).
# @param limit_nofile
#   Open-file limit of the service: one descriptor per connected node, 51200 for 50 000 nodes.
# @param stop_timeout
#   Seconds a stop waits for the lame duck to finish before killing the broker; keep it above
#   lame_duck_duration.
# @param max_connections
#   plugin.choria.network.max_connections (50000 when unset); raise limit_nofile with it.
# @param stream_store
#   plugin.choria.network.stream.store: turns Choria Streams on, with its data under this
#   directory (made for the broker's user). Unset: Streams is off.
# @param stream_max_store
#   plugin.choria.network.stream.max_store: disk Streams may use, bytes (2G) or % of the free disk (90% when unset).
# @param stream_max_memory
#   plugin.choria.network.stream.max_memory: memory Streams may use, bytes (1G) or % of RAM (25% when unset).
# @param stream_retention
#   Max age of the standard streams, by stream: event, machine, advisory, executor
#   (plugin.choria.network.stream.<name>_retention), such as { 'event' => '30d' }.
# @param stream_replicas
#   Replicas of the standard streams, by stream: event, machine, advisory, executor,
#   leader_election (plugin.choria.network.stream.<name>_replicas); -1 is the cluster's size.
# @param lame_duck_duration
#   plugin.choria.network.lame_duck_duration (30s when unset): how long a stop spreads disconnects over.
# @param use_srv
#   Let the broker find cluster peers and federation middleware in DNS SRV records.
# @param cluster_name
#   Name of the NATS cluster (plugin.choria.network.gateway_name); CHORIA when unset.
# @param gateway_port
#   plugin.choria.network.gateway_port: listen for gateways of other clusters (a super-cluster),
#   with mutual TLS; needs cluster_name. Unset: no gateways.
# @param gateway_remotes
#   Remote clusters this one links with, by name: { 'WEST' => { 'urls' => ['gw1.west.example.net:7222'] } },
#   each with optional tls_cert, tls_key, tls_ca (paths), tls_verify and tls_disable (plaintext, for an
#   old go-choria gateway only: it makes gateway_port plaintext) (plugin.choria.network.gateway_remote.NAME.*).
# @param gateway_brokers
#   Certname patterns taken as gateways besides the hosts of gateway_remotes' urls
#   (plugin.choria.network.gateway_brokers); a gateway_port without remotes takes only these.
# @param network_broker
#   Run the network broker.
# @param federation_broker
#   Run a federation broker (needs federation_cluster).
# @param federation_cluster
#   Name of this collective in the federation (plugin.choria.federation.cluster).
# @param federation_middleware_hosts
#   Federation brokers' host:port (plugin.choria.federation_middleware_hosts).
# @param collective_middleware_hosts
#   This collective's brokers' host:port, for the federation broker (plugin.choria.middleware_hosts).
# @param websocket_port
#   plugin.choria.network.websocket_port: a wss:// listener for clients and nodes behind proxies that
#   pass only HTTPS (through, not terminating TLS), with the client port's certificates and roles; 0 is off.
# @param websocket_advertise
#   plugin.choria.network.websocket_advertise: the host:port websocket clients of the cluster are told
#   to use (needs websocket_port).
# @param mappings
#   Subject mappings in the client account, in the order given (the first whose source matches applies):
#   name => { 'source' => subject, 'destination' => subject with NATS mapping functions }, such as
#   { 'partitions' => { 'source' => 'in.registration.*.>', 'destination' => 'registration.{{partition(5,1)}}.{{wildcard(1)}}.>' } }
#   (plugin.choria.network.mapping.names and mapping.NAME.source|destination).
# @param federation_brokers
#   Certname patterns of federation brokers allowed on this network broker
#   (plugin.choria.network.federation_brokers).
# @param leafnode_port
#   Accept leafnodes on this port (plugin.choria.network.leafnode_port), with mutual TLS:
#   only certificates matching leafnode_brokers get in. Unset: no leafnode port.
# @param leafnode_brokers
#   Certname patterns of the leaf brokers allowed on leafnode_port
#   (plugin.choria.network.leafnode_brokers), such as '^leaf\d+\.example\.net$'.
# @param leafnode_remotes
#   Hubs this broker is a leaf of, by name (plugin.choria.network.leafnode_remotes and
#   leafnode_remote.NAME.*): 'url' (host:port or a list of them) and optionally 'account',
#   'credentials', tls_cert, tls_key, tls_ca (paths, written as given), tls_verify and tls_disable.
#   A cluster with remotes needs its own cluster_name.
# @param stream_domain
#   plugin.choria.network.stream.domain: the JetStream domain of this broker's Streams, or,
#   on a leaf without stream_store, of its hub's.
# @param extra_config
#   More broker.conf settings, key => value.
# @param sysctl_file
#   Where manage_sysctl writes.
# @param collectd_dir
#   collectd's include directory for manage_collectd (/etc/collectd/conf.d with puppet-collectd).
class choria_broker (
  Array[String[1]] $servers = [],
  Optional[Variant[String[1], Sensitive[String[1]]]] $routes_password = undef,
  String[1] $routes_user = 'routes',
  Boolean $manage_collectd = false,
  Integer[1, 65535] $client_port = 4222,
  Integer[1, 65535] $cluster_port = 4223,
  Integer[0, 65535] $monitor_port = 8222,
  String[1] $listen_address = '::',
  String[1] $monitor_address = '127.0.0.1',
  Boolean $manage_sysctl = true,
  Hash[Pattern[/\A[a-z0-9_.]+\z/], Integer[0]] $sysctl = {
    'net.core.somaxconn'           => 4092,
    'net.ipv4.tcp_max_syn_backlog' => 8192,
  },
  Boolean $manage_package = true,
  String[1] $package_name = 'choria-broker',
  String[1] $package_ensure = 'present',
  Boolean $manage_service = true,
  Enum['running', 'stopped'] $service_ensure = 'running',
  Boolean $service_enable = true,
  Enum['systemd', 'upstart', 'sysvinit'] $service_provider = $facts.dig('choria_broker', 'init').lest || { 'systemd' },
  Boolean $manage_user = false,
  String[1] $user = 'choria',
  String[1] $group = 'choria',
  String[1] $identity = $trusted['certname'].lest || { $facts['networking']['fqdn'] },
  Pattern[/\A\//] $ssldir = $facts.dig('choria_broker', 'ssldir').lest || { '/etc/puppetlabs/puppet/ssl' },
  Boolean $copy_ssl = true,
  Pattern[/\A\//] $ssl_copy_dir = '/var/lib/choria-broker/ssl',
  Pattern[/\A\//] $config_dir = '/etc/choria',
  Variant[Enum[''], Pattern[/\A\/.*[^\/]\z/]] $root = '',
  Pattern[/\A\//] $binary = '/usr/bin/choria-broker',
  Enum['debug', 'info', 'warn', 'error'] $log_level = 'info',
  Optional[Pattern[/\A\//]] $logfile = undef,
  Integer[1024] $limit_nofile = 51200,
  Integer[1] $stop_timeout = 90,
  Optional[Integer[1]] $max_connections = undef,
  Optional[Pattern[/\A([0-9]+|([0-9]+(ms|s|m|h|d|w))+)\z/]] $lame_duck_duration = undef,
  Optional[Pattern[/\A\/.*[^\/]\z/]] $stream_store = undef,
  Optional[Pattern[/\A([0-9]+[KMGT]?|[0-9]{1,3}%)\z/]] $stream_max_store = undef,
  Optional[Pattern[/\A([0-9]+[KMGT]?|[0-9]{1,3}%)\z/]] $stream_max_memory = undef,
  Hash[Enum['event', 'machine', 'advisory', 'executor'], Pattern[/\A([0-9]+|([0-9]+(s|m|h|d|w|M|y))+)\z/]] $stream_retention = {},
  Hash[Enum['event', 'machine', 'advisory', 'executor', 'leader_election'], Integer[-1, 5]] $stream_replicas = {},
  Boolean $use_srv = false,
  Optional[String[1]] $cluster_name = undef,
  Optional[Integer[1, 65535]] $gateway_port = undef,
  Hash[Pattern[/\A[a-zA-Z0-9_-]+\z/], Struct[{
        urls                  => Array[String[1], 1],
        Optional[tls_cert]    => Pattern[/\A\//],
        Optional[tls_key]     => Pattern[/\A\//],
        Optional[tls_ca]      => Pattern[/\A\//],
        Optional[tls_verify]  => Boolean,
        Optional[tls_disable] => Boolean,
  }]] $gateway_remotes = {},
  Array[String[1]] $gateway_brokers = [],
  Boolean $network_broker = true,
  Boolean $federation_broker = false,
  Optional[Pattern[/\A[a-zA-Z0-9_-]+\z/]] $federation_cluster = undef,
  Array[String[1]] $federation_middleware_hosts = [],
  Array[String[1]] $collective_middleware_hosts = [],
  Array[String[1]] $federation_brokers = [],
  Integer[0, 65535] $websocket_port = 0,
  Optional[Pattern[/\A(\[[0-9a-fA-F:.]+\]|[^\s:\/\[\]]+):[0-9]{1,5}\z/]] $websocket_advertise = undef,
  Hash[Pattern[/\A[a-zA-Z0-9_-]+\z/], Struct[{ source => String[1], destination => String[1] }]] $mappings = {},
  Optional[Integer[1, 65535]] $leafnode_port = undef,
  Array[String[1]] $leafnode_brokers = [],
  Hash[Pattern[/\A[a-zA-Z0-9_-]+\z/], Struct[{
        url                   => Variant[String[1], Array[String[1], 1]],
        Optional[account]     => Enum['choria'],
        Optional[credentials] => Pattern[/\A\//],
        Optional[tls_cert]    => Pattern[/\A\//],
        Optional[tls_key]     => Pattern[/\A\//],
        Optional[tls_ca]      => Pattern[/\A\//],
        Optional[tls_verify]  => Boolean,
        Optional[tls_disable] => Boolean,
  }]] $leafnode_remotes = {},
  Optional[Pattern[/\A[a-zA-Z0-9_-]+\z/]] $stream_domain = undef,
  Hash[String[1], Scalar] $extra_config = {},
  Pattern[/\A\//] $sysctl_file = '/etc/sysctl.d/60-choria-broker.conf',
  Pattern[/\A\//] $collectd_dir = '/etc/collectd/collectd.conf.d',
) {
  if $root != '' and ($manage_package or $manage_service) {
    fail("choria_broker: root => '${root}' only writes files: set manage_package and manage_service to false")
  }
  if $federation_broker and $federation_cluster =~ Undef {
    fail('choria_broker: federation_broker => true needs federation_cluster')
  }
  if !$network_broker and !$federation_broker {
    fail('choria_broker: enable network_broker or federation_broker (or both)')
  }
  if $websocket_advertise =~ NotUndef and $websocket_port == 0 {
    fail('choria_broker: websocket_advertise needs websocket_port')
  }
  if !$gateway_remotes.empty and $gateway_port =~ Undef {
    fail('choria_broker: gateway_remotes needs gateway_port: every member of a super-cluster listens for gateways')
  }
  if $gateway_port =~ NotUndef and $cluster_name =~ Undef {
    fail('choria_broker: gateway_port needs cluster_name: every cluster of a super-cluster needs its own name')
  }
  if $manage_collectd and $monitor_port == 0 {
    fail('choria_broker: manage_collectd => true needs monitor_port')
  }
  if !$leafnode_remotes.empty and $servers.length > 1 and $cluster_name =~ Undef {
    fail(@(MSG/L))
      choria_broker: a cluster with leafnode_remotes needs a cluster_name of its own: its hub most likely \
      keeps the default, CHORIA, and refuses a leaf of the same name
      | MSG
  }
  $leafnode_remotes.each |$name, $remote| {
    if ($remote['tls_cert'] =~ Undef) != ($remote['tls_key'] =~ Undef) {
      fail("choria_broker: leafnode_remotes ${name}: set tls_cert and tls_key together, or neither")
    }
  }

  # Every path as written on this node: under root when staging.
  $config_file = "${root}${config_dir}/broker.conf"
  $broker_ssldir = $copy_ssl ? {
    true    => "${root}${ssl_copy_dir}",
    default => $ssldir,
  }
  $broker_binary = "${root}${binary}"
  $broker_logfile = $logfile ? {
    undef   => $service_provider ? {
      'sysvinit' => "${root}/var/log/choria/broker.log",
      default    => undef,
    },
    default => "${root}${logfile}",
  }
  $service_file = $service_provider ? {
    'systemd'  => "${root}/etc/systemd/system/choria-broker.service",
    'upstart'  => "${root}/etc/init/choria-broker.conf",
    'sysvinit' => "${root}/etc/init.d/choria-broker",
  }

  contain choria_broker::install
  contain choria_broker::config
  contain choria_broker::service

  # The service subscribes to the files it needs restarted or reloaded for.
  Class['choria_broker::install']
  -> Class['choria_broker::config']
  -> Class['choria_broker::service']
}
