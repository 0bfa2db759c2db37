"""The VM test tier as one pytest test: where the host kernel has no IPVS (this project's
dev and CI machines), boot a stock Debian kernel under qemu once and run the IPVS kernel
tests (tests/kernel/test_ipvs*.py) and the ipvs labs (whole clusters under `minikp test`) inside it; they must all pass there. Where the host has
IPVS, those tests run directly in tests/kernel and this one skips.

Needs root (apt-get, namespaces in the guest) and network access the first time
(tests/vm/prepare.sh installs qemu-system-x86, busybox-static, ipvsadm, ipset and downloads
the kernel package into /var/tmp/minikp-vm). A few minutes at most, bounded by a timeout.
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm"))
import tier  # noqa: E402

TIMEOUT_S = 480


@pytest.mark.skipif(os.geteuid() != 0, reason="the VM tier needs root (apt-get, namespaces in the guest)")
def test_ipvs_kernel_tests_pass_in_a_vm_with_ipvs():
    if tier.host_has_ipvs():
        pytest.skip("the host kernel has IPVS: tests/kernel/test_ipvs*.py run directly")
    result = tier.run(timeout_s=TIMEOUT_S)
    print(f"vm tier: prepare {result.prepare_s:.1f}s, boot+tests {result.run_s:.1f}s; "
          f"{result.tests} tests, {result.skipped} skipped")
    assert result.rc == 0 and result.tests > 0, result.console[-20000:]
    assert result.failures == result.errors == 0, result.console[-20000:]
    assert result.skipped < result.tests, "every IPVS test skipped inside the VM:\n" + result.console[-5000:]
    # nothing left behind in our run's session (another checkout's VM may be running beside us)
    left = tier.session_pids(result.session)
    assert not left, f"qemu still running: {left}"
