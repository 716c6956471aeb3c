# @summary broker.conf, the broker's copy of its certificates, the sysctl file and the collectd snippet.
# @api private
class choria_broker::config {
  $root = $choria_broker::root
  $user = $choria_broker::user
  $group = $choria_broker::group
  $ssl = $choria_broker::broker_ssldir
  $identity = $choria_broker::identity
  $logfile = $choria_broker::broker_logfile
  $logdir = $logfile ? {
    undef   => undef,
    default => $logfile.regsubst('/[^/]+\z', ''),
  }
  $sysctl_file = "${root}${choria_broker::sysctl_file}"
  $collectd_file = "${root}${choria_broker::collectd_dir}/choria-broker.conf"

  # Parent directories that may be missing (all of them when staging under
  # root), made without File resources so that other modules may manage
  # /etc/choria, /etc/sysctl.d or collectd's directory.
  $parents = [
    "${root}${choria_broker::config_dir}",
    $choria_broker::copy_ssl ? {
      true    => $ssl.regsubst('/[^/]+\z', ''),
      default => undef,
    },
    $logdir ? {
      undef   => undef,
      default => $logdir.regsubst('/[^/]+\z', ''),
    },
    $choria_broker::service_file.regsubst('/[^/]+\z', ''),
    $choria_broker::service_provider ? {
      'sysvinit' => "${root}/etc/default",
      default    => undef,
    },
    $choria_broker::manage_sysctl ? {
      true    => $sysctl_file.regsubst('/[^/]+\z', ''),
      default => undef,
    },
    $choria_broker::manage_collectd ? {
      true    => "${root}${choria_broker::collectd_dir}",
      default => undef,
    },
  ].filter |$dir| { $dir =~ NotUndef and $dir != '' }.unique

  exec { 'choria_broker: directories':
    command  => "mkdir -p ${shellquote($parents)}",
    unless   => $parents.map |$dir| { "test -d ${shellquote($dir)}" }.join(' && '),
    provider => 'shell',
    path     => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'],
  }

  if $logdir =~ NotUndef {
    file { $logdir:
      ensure  => directory,
      owner   => $user,
      group   => $group,
      mode    => '0750',
      require => Exec['choria_broker: directories'],
    }
  }

  $password = $choria_broker::routes_password ? {
    Sensitive => $choria_broker::routes_password.unwrap,
    default   => $choria_broker::routes_password,
  }
  $broker_conf = epp('choria_broker/broker.conf.epp', {
      'identity'                    => $identity,
      'loglevel'                    => $choria_broker::log_level,
      'logfile'                     => $logfile,
      'network_broker'              => $choria_broker::network_broker,
      'listen_address'              => $choria_broker::listen_address,
      'client_port'                 => $choria_broker::client_port,
      'monitor_address'             => $choria_broker::monitor_address,
      'monitor_port'                => $choria_broker::monitor_port,
      'use_srv'                     => $choria_broker::use_srv,
      'ssldir'                      => $ssl,
      'copy_ssl'                    => $choria_broker::copy_ssl,
      'max_connections'             => $choria_broker::max_connections,
      'lame_duck_duration'          => $choria_broker::lame_duck_duration,
      'stream_store'                => $choria_broker::stream_store ? {
        undef   => undef,
        default => "${root}${choria_broker::stream_store}",
      },
      'stream_max_store'            => $choria_broker::stream_max_store,
      'stream_max_memory'           => $choria_broker::stream_max_memory,
      'stream_retention'            => $choria_broker::stream_retention,
      'stream_replicas'             => $choria_broker::stream_replicas,
      'servers'                     => $choria_broker::servers,
      'cluster_port'                => $choria_broker::cluster_port,
      'routes_user'                 => $choria_broker::routes_user,
      'routes_password'             => $password,
      'cluster_name'                => $choria_broker::cluster_name,
      'gateway_port'                => $choria_broker::gateway_port,
      'gateway_remotes'             => $choria_broker::gateway_remotes,
      'gateway_brokers'             => $choria_broker::gateway_brokers,
      'federation_brokers'          => $choria_broker::federation_brokers,
      'websocket_port'              => $choria_broker::websocket_port,
      'websocket_advertise'         => $choria_broker::websocket_advertise,
      'mappings'                    => $choria_broker::mappings,
      'leafnode_port'               => $choria_broker::leafnode_port,
      'leafnode_brokers'            => $choria_broker::leafnode_brokers,
      'leafnode_remotes'            => $choria_broker::leafnode_remotes,
      'stream_domain'               => $choria_broker::stream_domain,
      'federation_broker'           => $choria_broker::federation_broker,
      'federation_cluster'          => $choria_broker::federation_cluster,
      'federation_middleware_hosts' => $choria_broker::federation_middleware_hosts,
      'collective_middleware_hosts' => $choria_broker::collective_middleware_hosts,
      'extra_config'                => $choria_broker::extra_config,
  })

  # Readable by the broker's group only: it may hold the routes password,
  # which stays out of reports and diffs.
  $content = $password ? {
    undef   => $broker_conf,
    default => Sensitive($broker_conf),
  }
  file { $choria_broker::config_file:
    ensure    => file,
    group     => $group,
    mode      => '0640',
    content   => $content,
    show_diff => $password =~ Undef,
    require   => Exec['choria_broker: directories'],
  }

  if $choria_broker::stream_store =~ NotUndef and $choria_broker::network_broker {
    # Streams' data: the broker's user's alone.
    exec { 'choria_broker: stream store':
      command  => "mkdir -p ${shellquote("${root}${choria_broker::stream_store}")}",
      creates  => "${root}${choria_broker::stream_store}",
      provider => 'shell',
      path     => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'],
    }
    -> file { "${root}${choria_broker::stream_store}":
      ensure => directory,
      owner  => $user,
      group  => $group,
      mode   => '0750',
    }
  }

  if $choria_broker::copy_ssl {
    # The broker runs as $user, which cannot read Puppet's ssldir: it gets
    # its own copy, in Puppet's layout, refreshed on every Puppet run (a
    # renewed certificate, a new CRL). The broker rereads the CA and CRL
    # by itself; the service class reloads it for a new certificate or key.
    file { [$ssl, "${ssl}/certs", "${ssl}/private_keys"]:
      ensure  => directory,
      owner   => $user,
      group   => $group,
      mode    => '0750',
      require => Exec['choria_broker: directories'],
    }
    $copies = {
      "${ssl}/certs/ca.pem"                => ["${choria_broker::ssldir}/certs/ca.pem", '0640'],
      "${ssl}/crl.pem"                     => ["${choria_broker::ssldir}/crl.pem", '0640'],
      "${ssl}/certs/${identity}.pem"        => ["${choria_broker::ssldir}/certs/${identity}.pem", '0640'],
      "${ssl}/private_keys/${identity}.pem" => ["${choria_broker::ssldir}/private_keys/${identity}.pem", '0600'],
    }
    $copies.each |$path, $from| {
      file { $path:
        ensure    => file,
        source    => $from[0],
        links     => follow,
        owner     => $user,
        group     => $group,
        mode      => $from[1],
        show_diff => false,
        backup    => false,
      }
    }
  }

  if $choria_broker::manage_sysctl {
    # Never lower what the kernel has: Linux 5.4 and later already default
    # net.core.somaxconn to 4096.
    $current = $facts.dig('choria_broker', 'sysctl').lest || { {} }
    $values = $choria_broker::sysctl.map |$key, $value| {
      [$key, max($value, $current[$key].lest || { $value })]
    }
    file { $sysctl_file:
      ensure  => file,
      mode    => '0644',
      content => epp('choria_broker/sysctl.conf.epp', { 'values' => Hash($values) }),
      require => Exec['choria_broker: directories'],
    }
    if $root == '' {
      exec { 'choria_broker: sysctl':
        command     => "sysctl -p ${shellquote($sysctl_file)}",
        path        => ['/usr/sbin', '/sbin', '/usr/bin', '/bin'],
        refreshonly => true,
        subscribe   => File[$sysctl_file],
      }
    }
  }

  if $choria_broker::manage_collectd {
    $monitor_host = $choria_broker::monitor_address ? {
      /\A(0\.0\.0\.0|::)\z/ => '127.0.0.1',
      /:/                   => "[${choria_broker::monitor_address}]",
      default               => $choria_broker::monitor_address,
    }
    file { $collectd_file:
      ensure  => file,
      mode    => '0644',
      content => epp('choria_broker/collectd.conf.epp', {
          'url' => "http://${monitor_host}:${choria_broker::monitor_port}/varz",
      }),
      require => Exec['choria_broker: directories'],
    }
    # With puppet-collectd (or any Service['collectd']), collectd rereads it.
    File[$collectd_file] ~> Service <| title == 'collectd' |>
  }
}
