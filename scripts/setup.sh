#!/usr/bin/env bash
# Installs what minikp needs on a fresh Debian machine (idempotent, quiet when all is there):
# the kernel tools it drives and the Python package with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt-ensure.sh setup iproute2 iptables nftables conntrack dnsmasq-base procps curl tmux \
  openssl dnsutils iputils-ping  # openssl: the ingress fake certificate; nslookup, dig, ping: the blog posts' commands inside `minikp exec`
# nginx: the ingress controller's pods run Debian's nginx in their own network namespace. The
# host's nginx service is not wanted: a policy-rc.d keeps the package from starting it, and
# it is stopped and disabled if something started it before.
if ! dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q "install ok installed"; then
  policy=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made=1
    trap 'rm -f "$policy"' EXIT
  fi
  scripts/apt-ensure.sh setup nginx
  if [ -n "$made" ]; then rm -f "$policy"; trap - EXIT; fi
fi
if command -v systemctl >/dev/null && systemctl is-enabled --quiet nginx 2>/dev/null; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi
# Docker pods (minikp.dev/runtime: docker): the engine (started privately, see
# minikp/docker/engine.py), a registry for the pull tests, and what images/ is built from.
# Installed with services held back (policy-rc.d exit 101): the packages' own dockerd and
# registry would start with default flags, and a default dockerd changes the host's FORWARD
# policy, ip_forward and NAT rules.
if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed" \
   && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
scripts/apt-ensure.sh setup docker.io docker-registry busybox-static gcc libc6-dev tcpdump
PY=${PY:-python3}
# checked from / so that the checkout itself (on sys.path as the cwd) does not count
if [ "$(cd / && $PY -c 'import minikp, pyroute2, yaml, docker, pytest, textual, pytest_textual_snapshot, os; print(os.path.dirname(minikp.__file__))' 2>/dev/null)" != "$PWD/minikp" ] \
   || ! command -v minikp >/dev/null; then
  echo "setup: installing the minikp Python package (editable) and test dependencies"
  $PY -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -e "^WARNING: Running pip as" -e "is ignored: it is neither" || true
fi
# Bytecode for the checkout, as a pip install of a wheel writes it: an editable install
# compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (this machine sets it) every
# `minikp` process compiled its modules again from source, ~0.18 s CPU of each `up`.
$PY -m compileall -q minikp >/dev/null
# make bench draws its figures (docs/figures/*.png) with matplotlib
if ! (cd / && $PY -c 'import matplotlib' 2>/dev/null); then
  echo "setup: installing matplotlib (make bench's figures)"
  $PY -m pip install -q --disable-pip-version-check matplotlib 2>&1 | grep -v -e "^WARNING: Running pip as" || true
fi
