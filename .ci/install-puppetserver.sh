#!/usr/bin/env bash
# Installs a real Puppet CA (Debian's puppetserver) for the tests in
# internal/testutil/puppetca. Idempotent: does nothing when already installed.
set -euo pipefail

need=()
command -v puppetserver >/dev/null 2>&1 || need+=(puppetserver)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# puppetserver depends on default-jre-headless; listed so a half-broken
# install is repaired too.
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)

if [ "${#need[@]}" -eq 0 ]; then
	echo "install-puppetserver: already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"

# The tests run their own puppetserver in a scratch dir; the system service,
# if the package's postinst started one, would hold port 8140 and memory.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now puppetserver >/dev/null 2>&1 || true
fi

command -v puppetserver >/dev/null
echo "install-puppetserver: installed ${need[*]}"
