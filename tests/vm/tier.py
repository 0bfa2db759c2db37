"""The VM test tier, driven from the host: prepare (tests/vm/prepare.sh), boot the stock
Debian kernel once under qemu, run the IPVS kernel tests inside it with this machine's own
Python, read the result back from the shared folder.

    python3 tests/vm/tier.py [TEST PATHS...]       # as root; exit code = the guest's pytest's
    python3 tests/vm/tier.py --script bench/bench_ipvs_sync.py [ARGS...]   # any script

run(tests, timeout_s) -> TierResult; run(script=, args=) runs a script instead of pytest;
host_has_ipvs() says whether the tier is needed at all.
qemu runs in a session of its own (run-guest.sh leads it), and every process of that session
is killed if anything goes wrong, so no qemu process outlives a run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# the ipvs proxier's kernel tests, and the ipvs labs end to end (`minikp test` in the guest)
DEFAULT_TESTS = ("tests/kernel/test_ipvs*.py", "tests/kernel/test_labs.py::test_lab_passes[ipvs-basics]",
                 "tests/kernel/test_labs.py::test_lab_passes[ipvs-schedulers]")
WORK_DIR = os.environ.get("MINIKP_VM_DIR", "/var/tmp/minikp-vm")


@dataclass
class TierResult:
    rc: int  # the guest command's exit code; 99: nothing came back (timeout, crash)
    console: str  # the guest's console output
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    prepare_s: float = 0.0
    run_s: float = 0.0
    session: int = 0  # the session qemu ran in: whatever is left in it is ours, nothing else is


def host_has_ipvs() -> bool:
    """IPVS answers here (this process's namespace: /proc/net/ip_vs appears with ip_vs)."""
    if os.path.exists("/proc/net/ip_vs"):
        return True
    return subprocess.run(["modprobe", "-q", "ip_vs"], capture_output=True).returncode == 0 \
        and os.path.exists("/proc/net/ip_vs")


def prepare(timeout_s: float = 900) -> str:
    res = subprocess.run([os.path.join(HERE, "prepare.sh"), WORK_DIR], capture_output=True, text=True,
                         timeout=timeout_s)
    if res.returncode != 0:
        raise RuntimeError(f"tests/vm/prepare.sh failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout.strip().splitlines()[-1]


def _junit(path: str) -> dict[str, int]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} if suite is not None else {}


def session_pids(sid: int) -> list[int]:
    """The processes of session `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or gone meanwhile
            continue
        if int(fields[3]) == sid:  # after ")": state ppid pgrp session
            pids.append(int(entry))
    return pids


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL every process of the session `proc` leads: `timeout` in run-guest.sh puts qemu
    in a process group of its own, so killing proc's group alone left qemu running."""
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(tests: tuple[str, ...] = DEFAULT_TESTS, timeout_s: int = 600, script: str = "",
        args: tuple[str, ...] = ()) -> TierResult:
    t0 = time.monotonic()
    work = prepare()
    t1 = time.monotonic()
    python = os.path.realpath(sys.executable)  # the guest has no pyenv shims on PATH
    with tempfile.TemporaryDirectory(prefix="minikp-vm-out-") as out:
        words = f"PROJECT_DIR={ROOT} PY={python} TESTS={','.join(tests)}"
        if script:
            words += f" SCRIPT={script} ARGS={','.join(args)}"  # the kernel command line has no quoting
        env = dict(os.environ, TIMEOUT=str(timeout_s), APPEND=words, PROJECT=ROOT)
        proc = subprocess.Popen([os.path.join(HERE, "run-guest.sh"), work, out,
                                 os.path.join(HERE, "guest-run.sh")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
        try:
            console, _ = proc.communicate(timeout=timeout_s + 30)
        finally:
            if proc.poll() is None:
                kill(proc)
                proc.wait()
        counts = _junit(os.path.join(out, "junit.xml"))
    return TierResult(proc.returncode, console.replace("\r", ""), prepare_s=t1 - t0,
                      run_s=time.monotonic() - t1, session=proc.pid, **counts)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--script"]:
        result = run(script=argv[1], args=tuple(argv[2:]), timeout_s=int(os.environ.get("TIMEOUT", 1800)))
    else:
        result = run(tuple(argv) or DEFAULT_TESTS)
    print(result.console)
    print(f"vm tier: rc={result.rc} tests={result.tests} failures={result.failures} errors={result.errors} "
          f"skipped={result.skipped} prepare={result.prepare_s:.1f}s run={result.run_s:.1f}s")
    sys.exit(result.rc)
