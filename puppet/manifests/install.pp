# @summary The choria-broker package and, when asked, its user.
# @api private
class choria_broker::install {
  if $choria_broker::manage_package {
    package { $choria_broker::package_name:
      ensure => $choria_broker::package_ensure,
    }
  }

  if $choria_broker::manage_user {
    group { $choria_broker::group:
      ensure => present,
      system => true,
    }
    user { $choria_broker::user:
      ensure     => present,
      system     => true,
      gid        => $choria_broker::group,
      home       => '/var/lib/choria-broker',
      managehome => false,
      shell      => '/usr/sbin/nologin',
      comment    => 'Choria broker',
    }
  }
}
