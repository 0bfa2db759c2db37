"""Every command the README and the lab sheets print runs as printed (issue 12 items 7, 8).

The commands are the indented lines of their code blocks that start with `minikp` or
`sudo minikp` (`make demo`/`make test` are not: they run whole suites of their own). Each
runs in order through a shell, with `sudo` dropped and `--name C` added after every
`minikp VERB` so that the test's cluster cannot meet anyone else's. A trailing `&` runs it
in the background until the document ends; `--watch` runs it until interrupted (a few
seconds here, as a reader's Ctrl-C); a comment saying "times out" expects a failure exit.
The cluster is torn down at the end either way. `minikp tui` is the one command not run
here: it is a full-screen dashboard that needs a person at a terminal
(tests/kernel/test_tui_live.py drives it).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import minikp

ROOT = Path(__file__).resolve().parents[2]
WATCH_S = 4.0  # how long a `--watch` command runs before its Ctrl-C


def commands(markdown: str) -> list[tuple[str, str]]:
    """(command, its comment) for each `minikp` line of the document's code blocks."""
    out = []
    for line in markdown.splitlines():
        if not line.startswith("    ") or not re.match(r"(sudo )?minikp ", line.strip()):
            continue
        if re.match(r"(sudo )?minikp tui\b", line.strip()):
            continue  # interactive: see the module docstring
        m = re.match(r"(.*?)(?:\s{2,}#\s?(.*))?$", line.strip())
        out.append((m.group(1).strip(), (m.group(2) or "").strip()))
    return out


def shell_line(cmd: str, cluster: str) -> str:
    cmd = re.sub(r"(^|[;&|(]\s*)sudo ", r"\1", cmd)
    return re.sub(r"\bminikp ([\w-]+)", rf"{sys.executable} -m minikp.cli \1 --name {cluster}", cmd)


def run_document(path: Path, cluster: str) -> list[tuple[str, str]]:
    """Run the document's commands in order; (command, output) for each."""
    ran, background = [], []
    try:
        for cmd, comment in commands(path.read_text()):
            assert not re.search(r"<[^>]+>|\bxxxx", cmd), f"{path.name}: not runnable as printed: {cmd}"
            line = shell_line(cmd.rstrip("&").strip(), cluster)
            argv = ["bash", "-o", "pipefail", "-c", line]
            if cmd.endswith("&"):
                log = open(f"/tmp/mkt-docs-{cluster}-{len(background)}.log", "w+")
                background.append((cmd, log, subprocess.Popen(argv, cwd=ROOT, stdout=log,
                                                              stderr=subprocess.STDOUT,
                                                              start_new_session=True)))
                time.sleep(0.5)  # subscribed before the next command changes anything
                continue
            if "--watch" in cmd:
                p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
                try:
                    out, _ = p.communicate(timeout=WATCH_S)
                    assert p.returncode == 0, f"{path.name}: `{cmd}` exited {p.returncode}:\n{out}"
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGINT)
                    out, _ = p.communicate(timeout=10)
                assert out.strip(), f"{path.name}: `{cmd}` printed nothing"
                ran.append((cmd, out))
                continue
            r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
            failing = "times out" in comment or "fails" in comment
            assert (r.returncode != 0) == failing, (
                f"{path.name}: `{cmd}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
            ran.append((cmd, r.stdout))
    finally:
        for cmd, log, p in background:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                p.wait(10)
            log.seek(0)
            ran.append((cmd, log.read()))
            log.close()
            os.unlink(log.name)
        minikp("down", "--name", cluster, check=False)
    return ran


def output_of(ran, prefix: str) -> str:
    return next(out for cmd, out in ran if cmd.startswith(prefix))


def test_commands_are_the_indented_minikp_lines_with_their_comments():
    doc = "text\n\n    make demo    # no\n    sudo minikp up x.yaml   # returns\n    minikp get pods\n"
    assert commands(doc) == [("sudo minikp up x.yaml", "returns"), ("minikp get pods", "")]
    assert commands("    sudo minikp tui --name C   # a dashboard\n") == []
    assert shell_line("minikp get pods -o name | grep web", "c") == \
        f"{sys.executable} -m minikp.cli get --name c pods -o name | grep web"
    assert shell_line("sudo minikp diff-rules n1 f", "c") == \
        f"{sys.executable} -m minikp.cli diff-rules --name c n1 f"  # a verb with a dash


def test_the_readme_runs_as_printed():
    ran = run_document(ROOT / "README.md", "mkt-docs-readme")
    assert "KUBE-SERVICES" in output_of(ran, "sudo minikp rules node-1")
    assert "through node" in output_of(ran, "sudo minikp trace")
    assert "PASS" in output_of(ran, "sudo minikp test")
    assert "Chain KUBE-SERVICES" in output_of(ran, "sudo minikp exec node/node-1 -- iptables -t nat")
    assert "deployment.apps/hostnames" in output_of(ran, "minikp get all")
    assert "Endpoints:" in output_of(ran, "sudo minikp describe svc hostnames")
    assert "5 desired | 5 updated" in output_of(ran, "sudo minikp describe deployment web")


def test_the_hostnames_sheet_runs_and_counts_its_endpoint_rules_right():
    sheet = ROOT / "scenarios/hostnames.md"
    ran = run_document(sheet, "mkt-docs-hostnames")
    grep = output_of(ran, "sudo minikp rules node-1 --table nat | grep hostnames")
    endpoint_rules = [l for l in grep.splitlines() if l.startswith("-A KUBE-SVC-") and " -> " in l]
    words = {"three": 3, "four": 4, "six": 6, "eight": 8}
    said = re.search(r"the grep shows (\w+) endpoint rules", sheet.read_text().replace("\n", " "))
    assert said and words.get(said.group(1)) == len(endpoint_rules), (said, grep)
    assert "Name:\thostnames.default.svc.cluster.local" in output_of(ran, "sudo minikp exec pod/app=curl -- nslookup")
    assert "100% packet loss" in output_of(ran, "sudo minikp exec pod/app=curl -- ping")
    # the posts' command on the node shows the proxy's rules (issue 12 item 1)
    on_node = output_of(ran, "sudo minikp exec node/node-1 -- iptables-save | grep hostnames")
    assert '"default/hostnames:http cluster IP"' in on_node, on_node


def test_the_loadbalancer_sheet_runs_and_its_blocked_step_is_short():
    ran = run_document(ROOT / "scenarios/loadbalancer.md", "mkt-docs-lb")
    cmd, out = next((c, o) for c, o in ran if "client/blocked" in c)
    timeout = float(re.search(r"--timeout ([\d.]+)", cmd).group(1))
    count = int(re.search(r"-c (\d+)", cmd).group(1))
    assert timeout * count <= 3, cmd  # a few seconds, not 10 requests of 2 s
    assert "0 answered" in out


def test_the_ingress_sheet_runs_and_each_host_reaches_its_deployment():
    ran = run_document(ROOT / "scenarios/ingress.md", "mkt-docs-ingress")
    www1, www2 = [out for cmd, out in ran if "http://www" in cmd][:2]
    assert www1.startswith("web1-") and www2.startswith("web2-")
    assert "172.18.255.200" in output_of(ran, "minikp get ingress")
    assert "upstream default-web1-80" in output_of(ran, "sudo minikp exec deployment/ingress-nginx")
    assert [out for cmd, out in ran if "http://www1" in cmd][1].startswith("web2-")  # after apply
    assert "RELOAD" in output_of(ran, "sudo minikp events")


def test_the_pod_dies_sheet_shows_the_two_endpoint_moment_in_events():
    ran = run_document(ROOT / "scenarios/pod-dies.md", "mkt-docs-poddies")
    events = output_of(ran, "minikp events --watch")
    assert "endpoints default/web: 2 ready (of 3)" in events, events
    assert "endpoints default/web: 3 ready" in events, events
    assert "ScalingReplicaSet" in output_of(ran, "sudo minikp describe deployment web")


def test_the_docker_hostnames_sheet_runs_with_real_containers():
    import shutil
    if shutil.which("dockerd") is None:
        pytest.skip("Docker pods need dockerd (Debian docker.io; scripts/setup.sh installs it)")
    ran = run_document(ROOT / "scenarios/docker-hostnames.md", "mkt-docs-docker")
    assert "serving hostname (TCP, UDP) on port 9376" in output_of(ran, "sudo minikp logs")
    assert output_of(ran, "sudo minikp exec curl -- curl -s hostnames").startswith("hostnames-")
    assert "HOSTNAMES_SERVICE_HOST=" in output_of(ran, "sudo minikp exec curl -- env")


def test_the_source_ip_sheet_runs_and_echo_shows_who_it_saw():
    import shutil
    if shutil.which("dockerd") is None:
        pytest.skip("Docker pods need dockerd (Debian docker.io; scripts/setup.sh installs it)")
    ran = run_document(ROOT / "scenarios/source-ip.md", "mkt-docs-sourceip")
    assert "client: 10.244." in output_of(ran, "sudo minikp exec curl -- curl -s echo-cluster")
    assert "client: 172.18.0.2:" in output_of(ran, "sudo minikp curl http://172.18.0.2:30080/")
    assert "client: 172.18.100.1:" in output_of(ran, "sudo minikp curl http://172.18.0.3:30081/")
    assert "client: 172.18.100.1:" in output_of(ran, "sudo minikp curl http://172.18.255.220/")
    assert "-j KUBE-SVL-" in output_of(ran, "sudo minikp rules node-2")
    assert "echo-local has no local endpoints" in output_of(ran, "sudo minikp rules node-1")


def test_the_old_blog_sheet_prints_every_line_of_the_post_it_quotes():
    """Issue 16's done-when, live: the post's pods keep their addresses, so each quoted line
    (SERVICES, SVC and SEP) is in the node's iptables-save, byte for byte."""
    sheet = ROOT / "scenarios/old-blog.md"
    quoted = [l.strip() for l in sheet.read_text().splitlines() if l.startswith("    -A KUBE-")]
    assert len(set(quoted)) == 11, quoted  # the intro quotes one of them again
    ran = run_document(sheet, "mkt-docs-oldblog")
    saved = output_of(ran, "sudo minikp exec node/node-1 -- iptables-save -t nat").splitlines()
    assert [l for l in quoted if l not in saved] == []
    curl = output_of(ran, "sudo minikp curl http://hostnames/")
    assert "0 failed" in curl and len(set(re.findall(r"hostnames-632524106-\w+", curl))) == 3, curl
    assert "2 passed, 0 failed" in output_of(ran, "sudo minikp test")
