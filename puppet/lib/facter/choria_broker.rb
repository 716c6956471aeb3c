# frozen_string_literal: true

# choria_broker: what the choria_broker class needs to know about a node,
# found on the node itself: its init system (systemd, upstart or sysvinit),
# Puppet's ssldir there, and the current values of the sysctls the class
# raises (it never lowers them).
Facter.add(:choria_broker) do
  confine kernel: 'Linux'

  setcode do
    init = if File.directory?('/run/systemd/system')
             'systemd'
           elsif File.executable?('/sbin/initctl') &&
                 Facter::Core::Execution.execute('/sbin/initctl version', on_fail: '').include?('upstart')
             'upstart'
           else
             'sysvinit'
           end

    ssldir = begin
      Puppet.settings[:ssldir] if defined?(Puppet) && Puppet.respond_to?(:settings)
    rescue StandardError
      nil
    end

    sysctl = {}
    ['net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog'].each do |key|
      path = File.join('/proc/sys', key.tr('.', '/'))
      sysctl[key] = File.read(path).strip.to_i if File.readable?(path)
    end

    result = { 'init' => init, 'sysctl' => sysctl }
    result['ssldir'] = ssldir.to_s unless ssldir.nil?
    result
  end
end
