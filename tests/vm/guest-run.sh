#!/bin/sh
# The VM tier's guest command: load what the IPVS tests need, then with the host's own Python
# (PY, a real path: the guest PATH has no pyenv shims), from PROJECT_DIR, either run pytest on
# TESTS (junit to the shared folder) or, when SCRIPT is set, `PY SCRIPT ARGS`. Environment
# comes from the kernel command line (run-guest.sh APPEND); lists there are comma-separated.
echo "[guest $(cut -d' ' -f1 /proc/uptime)s] $(uname -r), $PY"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed \
         ip_vs_nq ip_vs_mh xt_ipvs ip_set veth bridge br_netfilter dummy nf_conntrack nf_conntrack_netlink sctp; do
  modprobe "$m" 2>/dev/null || echo "[guest] modprobe $m failed"
done
cd "${PROJECT_DIR:?}" || exit 97
if [ -n "$SCRIPT" ]; then
  # shellcheck disable=SC2046 - ARGS is a list
  "${PY:?}" "$SCRIPT" $(echo "$ARGS" | tr , " ")
else
  # shellcheck disable=SC2046 - TESTS is a list of paths/globs
  "${PY:?}" -m pytest -q -rs --color=no -p no:cacheprovider --junitxml=/mnt/out/junit.xml \
    $(echo "${TESTS:-tests/kernel/test_ipvs*.py}" | tr , " ")
fi
rc=$?; echo "[guest $(cut -d' ' -f1 /proc/uptime)s] rc=$rc"; exit $rc
