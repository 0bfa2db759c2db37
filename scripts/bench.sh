#!/usr/bin/env bash
# make bench: minikp vs Mininet bring-up/teardown (10, 100, 1,000 pods), memory at 1,000 pods,
# datapath throughput with wrk, proxy sync, the pod sandbox's start cost, Docker pods; writes
# docs/benchmarks.md. Root, Debian; ~45 minutes on 2 CPUs (nftables at 10,000 services and the VM are half of it).
# Extra arguments go to bench/run_all.py (e.g. --sizes 10:1 100:1 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
# Mininet without Open vSwitch (the benchmark uses Linux-bridge switches, which need brctl).
scripts/apt-ensure.sh bench mininet bridge-utils wrk curl
PY=${PY:-python3}
# Leftovers of an interrupted run: only the benchmark's own clusters and namespace.
for c in bench10 bench100 bench200 bench1000 benchlab benchdp benchtui docker-bench-0 docker-bench-b docker-bench-d; do
  [ -e "/run/minikp/$c" ] && $PY -m minikp.cli down --name "$c" >/dev/null 2>&1 || true
done
ip netns del minikpbench-mn 2>/dev/null || true
ip netns del minikpbench-sbx 2>/dev/null || true
$PY bench/run_all.py "$@"
$PY bench/tui.py 1000  # the dashboard at 1,000 pods: docs/benchmarks-tui.md
# after run_all.py, which rewrites the doc: this one replaces only its own section
$PY bench/sandbox_start.py --doc docs/benchmarks.md
$PY bench/docker_pods.py --doc docs/benchmarks.md  # Docker pods against built-in ones
