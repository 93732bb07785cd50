#!/usr/bin/env bash
# Debian packages the test suite needs: sshd for the test hosts, rpmbuild to pack the stand-in
# OBProxy RPM, iproute2 for network namespaces, chromium for the console's browser tests (driven
# by Playwright through its executable path: Playwright's own browser download needs the internet). Installs only what is missing.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v rpmbuild >/dev/null 2>&1 || need+=(rpm)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
