#!/bin/sh
# The VM tier's guest command: load what the IPVS tests need, run them with the host's own
# Python (PY, a real path: the guest PATH has no pyenv shims) from PROJECT_DIR, junit to the
# shared folder. Environment comes from the kernel command line (run-guest.sh APPEND).
echo "[guest $(cut -d' ' -f1 /proc/uptime)s] $(uname -r): running $(echo "${TESTS:-tests/kernel/test_ipvs*.py}" | tr , " ") with $PY"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed \
         ip_vs_nq ip_vs_mh xt_ipvs ip_set veth bridge br_netfilter dummy nf_conntrack sctp; do
  modprobe "$m" 2>/dev/null || echo "[guest] modprobe $m failed"
done
cd "${PROJECT_DIR:?}" || exit 97
# shellcheck disable=SC2086 - TESTS is a list of paths/globs
"${PY:?}" -m pytest -q -rs --color=no -p no:cacheprovider --junitxml=/mnt/out/junit.xml $(echo "${TESTS:-tests/kernel/test_ipvs*.py}" | tr , " ")
rc=$?; echo "[guest $(cut -d' ' -f1 /proc/uptime)s] pytest rc=$rc"; exit $rc
