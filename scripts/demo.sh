#!/usr/bin/env bash
# The README's demo: the hostnames scenario up, requests through its Service from a pod,
# what was built, the node's rules as iptables-save prints them, then everything torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
C=demo
trap 'minikp down --name $C >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step minikp up scenarios/hostnames.yaml --name $C
step minikp get nodes -o wide --name $C
step minikp get pods -o wide --name $C
step minikp get svc --name $C
step minikp get endpoints hostnames --name $C
ip=$(minikp get svc hostnames --name $C -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["spec"]["clusterIP"])')
step minikp curl "http://$ip/" --from pod/curl -c 30 --name $C
step minikp curl http://hostnames/ --from pod/curl -c 30 --name $C
step minikp exec curl --name $C -- sh -c 'hostname; cat /etc/resolv.conf; getent hosts hostnames'
echo; printf '\n\033[1m$ %s\033[0m\n' "minikp rules node-1 --table nat --name $C | grep -v kube-system   # the cluster DNS's chains left out"
minikp rules node-1 --table nat --name $C | grep -v -e kube-system -e '^:KUBE-S[EV][PC]-'
step minikp down --name $C
trap - EXIT
