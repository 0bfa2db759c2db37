#!/usr/bin/env bash
# The README's demo: the hostnames scenario up, requests through its Service from a pod,
# what was built, the node's rules as iptables-save prints them, then everything torn down.
# The cluster gets a name of its own (demo-PID-RANDOM): on a shared machine it can be
# neither someone else's cluster nor taken down in someone's place.
set -euo pipefail
cd "$(dirname "$0")/.."
MINIKP=${MINIKP:-minikp}  # e.g. MINIKP="python3 -m minikp.cli" for this checkout
C="demo-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
trap '$MINIKP down --name "$C" >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m$ minikp %s\033[0m\n' "$*"; $MINIKP "$@"; }

step up scenarios/hostnames.yaml --name "$C"
step get nodes -o wide --name "$C"
step get pods -o wide --name "$C"
step get svc --name "$C"
step get endpoints hostnames --name "$C"
ip=$($MINIKP get svc hostnames --name "$C" -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["spec"]["clusterIP"])')
step curl "http://$ip/" --from pod/curl -c 30 --name "$C"
step curl http://hostnames/ --from pod/curl -c 30 --name "$C"
step exec curl --name "$C" -- sh -c 'hostname; cat /etc/resolv.conf; getent hosts hostnames'
printf '\n\033[1m$ %s\033[0m\n' "minikp rules node-1 --table nat --name $C | grep -v kube-system   # the cluster DNS's chains left out"
$MINIKP rules node-1 --table nat --name "$C" | grep -v -e kube-system -e '^:KUBE-S[EV][PC]-'
step down --name "$C"
trap - EXIT
