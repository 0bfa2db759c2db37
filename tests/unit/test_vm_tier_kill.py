"""tests/vm/tier.py's kill: every process of qemu's session goes, also one that `timeout`
moved into a process group of its own (no root, no VM: a shell stands in for run-guest.sh)."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "vm"))
import tier  # noqa: E402


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # dead, not yet reaped
    except FileNotFoundError:
        return True


def test_kill_reaches_a_process_group_of_its_own_in_the_session():
    # as in run-guest.sh: `timeout` makes a process group of its own (for what it runs)
    proc = subprocess.Popen(["sh", "-c", "timeout 60 sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        inner = int(proc.stdout.readline())
        for _ in range(50):  # timeout calls setpgid once it runs
            if os.getpgid(inner) != proc.pid:
                break
            time.sleep(0.05)
        assert os.getpgid(inner) != proc.pid and os.getsid(inner) == proc.pid
        assert {proc.pid, inner} <= set(tier.session_pids(proc.pid))  # and timeout's sleep
        tier.kill(proc)
        proc.wait(5)
        for _ in range(50):
            if _gone(inner):
                break
            time.sleep(0.05)
        assert _gone(inner)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
