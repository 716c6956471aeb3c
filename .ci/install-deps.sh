#!/usr/bin/env bash
# Installs every program the tests start, from Debian's packages.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v make >/dev/null || need+=(make)
command -v git >/dev/null || need+=(git)
command -v openssl >/dev/null || need+=(openssl)
# dist/ and puppet/ tests: systemd-analyze, start-stop-daemon, collectd with
# its curl_json plugin's libraries, real Puppet and puppet-lint.
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v start-stop-daemon >/dev/null || need+=(dpkg)
{ command -v collectd >/dev/null && dpkg -s libcurl3-gnutls libyajl2 >/dev/null 2>&1; } || need+=(collectd-core libcurl3-gnutls libyajl2)
command -v puppet >/dev/null || need+=(puppet)
command -v puppet-lint >/dev/null || need+=(puppet-lint)
# internal/stats tests: real Prometheus scraping the broker, headless Chromium on the status page.
command -v prometheus >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
# Cluster peers and federation brokers found through SRV records: a real DNS server.
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
here=$(dirname "$0")
bash "$here/install-puppetserver.sh"

# Stock nats-server, the engine's own version, for interop tests and benchmarks.
version=$(cd "$here/.." && go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
if ! nats-server --version 2>/dev/null | grep -q "$version"; then
  GOBIN=/usr/local/bin GOFLAGS=-mod=mod go install "github.com/nats-io/nats-server/v2@$version"
fi

# The nats CLI, for tests that drive Choria Streams as operators do.
natscli=v0.5.0
if ! nats --version 2>/dev/null | grep -q "${natscli#v}"; then
  GOBIN=/usr/local/bin GOFLAGS=-mod=mod go install "github.com/nats-io/natscli/nats@$natscli"
fi
