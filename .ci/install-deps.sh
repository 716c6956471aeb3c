#!/usr/bin/env bash
# Installs every program the tests start, from Debian's packages.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v make >/dev/null || need+=(make)
command -v git >/dev/null || need+=(git)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
here=$(dirname "$0")
bash "$here/install-puppetserver.sh"
