"""Measure how each IPVS scheduler spreads requests, for the ipvs-schedulers lab sheet.

Needs IPVS: `python3 tests/vm/tier.py --script bench/ipvs_schedulers.py`. Uses the kernel
tests' topology (tests/kernel/test_ipvs.py: one node, 3 serve_hostname pods, a client pod),
one fresh Service per scheduler; per scheduler: 60 requests one after the other, then 3
connections held open together. Prints one JSON line per scheduler. Not part of the tests.
"""

import json
import os
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "kernel")]

from minikp.proxy.ipvs.render import SCHEDULERS  # noqa: E402
from test_ipvs import Topology  # noqa: E402


def main() -> None:
    topo = Topology()
    try:
        topo.build()
        for sched in SCHEDULERS:
            sp = topo.add_service(ipvs_scheduler=sched)
            topo.sync()
            one_at_a_time = Counter(topo.get(sp.cluster_ip) for _ in range(60))
            held = topo.concurrent(sp.cluster_ip, 3)
            print(json.dumps({"scheduler": sched, "sequential_60": dict(sorted(one_at_a_time.items())),
                              "held_3": held}), flush=True)
    finally:
        topo.teardown()


if __name__ == "__main__":
    main()
