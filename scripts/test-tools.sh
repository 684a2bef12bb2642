#!/usr/bin/env bash
# Tools the tests run for real, from Debian's packages: Prometheus (with promtool) and Alertmanager for
# the monitoring tests, Chromium for the web UI's browser tests (driven by Playwright, which must never
# download a browser of its own). Installs them only when missing, and only as root with apt-get;
# otherwise says what to run (the tests that need them then skip, or fail when CI=true).
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
  || missing+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: ${missing[*]} missing; install with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 0
fi

echo "test-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their services here: the tests start their own on loopback.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[ "$made_policy" -eq 1 ] && rm -f "$policy"' EXIT
apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null \
  || { apt-get -o DPkg::Lock::Timeout=300 update >/dev/null \
       && apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null; }
