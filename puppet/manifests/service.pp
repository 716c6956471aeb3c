# @summary The service file for the node's init system, and the service.
# @api private
class choria_broker::service {
  $root = $choria_broker::root
  $provider = $choria_broker::service_provider
  $service_file = $choria_broker::service_file
  $values = {
    'binary'       => $choria_broker::broker_binary,
    'config_file'  => $choria_broker::config_file,
    'user'         => $choria_broker::user,
    'group'        => $choria_broker::group,
    'limit_nofile' => $choria_broker::limit_nofile,
    'stop_timeout' => $choria_broker::stop_timeout,
  }

  case $provider {
    'systemd': {
      file { $service_file:
        ensure  => file,
        mode    => '0644',
        content => epp('choria_broker/choria-broker.service.epp', $values),
      }
      $service_files = [File[$service_file]]
    }
    'upstart': {
      file { $service_file:
        ensure  => file,
        mode    => '0644',
        content => epp('choria_broker/upstart.conf.epp', $values),
      }
      $service_files = [File[$service_file]]
    }
    default: {
      file { $service_file:
        ensure => file,
        mode   => '0755',
        source => 'puppet:///modules/choria_broker/choria-broker.init',
      }
      file { "${root}/etc/default/choria-broker":
        ensure  => file,
        mode    => '0644',
        content => epp('choria_broker/sysvinit.default.epp', $values + {
            'logfile' => $choria_broker::broker_logfile,
        }),
      }
      $service_files = [File[$service_file], File["${root}/etc/default/choria-broker"]]
    }
  }

  if $choria_broker::manage_service {
    if $provider == 'systemd' {
      exec { 'choria_broker: daemon-reload':
        command     => 'systemctl daemon-reload',
        path        => ['/usr/bin', '/bin'],
        refreshonly => true,
        subscribe   => File[$service_file],
        before      => Service['choria-broker'],
      }
    }

    # A restart goes through lame duck: clients move to the other members
    # over lame_duck_duration.
    # Puppet's name for the sysvinit provider depends on the distribution.
    $puppet_provider = $provider ? {
      'sysvinit' => $facts['os']['family'] ? {
        'Debian' => 'debian',
        'RedHat' => 'redhat',
        default  => 'init',
      },
      default    => $provider,
    }
    service { 'choria-broker':
      ensure    => $choria_broker::service_ensure,
      enable    => $choria_broker::service_enable,
      provider  => $puppet_provider,
      subscribe => [File[$choria_broker::config_file]] + $service_files,
    }

    # A renewed certificate or key needs only a reload (SIGHUP), which keeps
    # every client connected; nothing happens when the broker is not running.
    if $choria_broker::copy_ssl {
      $ssl = $choria_broker::broker_ssldir
      $identity = $choria_broker::identity
      $reload = $provider ? {
        'systemd'  => 'systemctl try-reload-or-restart choria-broker',
        'upstart'  => 'if initctl status choria-broker | grep -q running; then initctl reload choria-broker; fi',
        'sysvinit' => 'if /etc/init.d/choria-broker status >/dev/null; then /etc/init.d/choria-broker reload; fi',
      }
      exec { 'choria_broker: reload':
        command     => $reload,
        provider    => 'shell',
        path        => ['/usr/sbin', '/sbin', '/usr/bin', '/bin'],
        refreshonly => true,
        require     => Service['choria-broker'],
        subscribe   => [
          File["${ssl}/certs/${identity}.pem"],
          File["${ssl}/private_keys/${identity}.pem"],
        ],
      }
    }
  }
}
