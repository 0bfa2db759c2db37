"""Which iptables processes an IptablesProxier full sync runs (the kernel edge faked): a
fresh node gets its base chains and its rules in one iptables-restore, and a full sync reads
iptables-save at most once."""

from minikp.proxy.iptables import render as rd, sync
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

SVC = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, endpoints=(E("10.180.0.1", 80),))
SNAP = ProxySnapshot("node-a", "192.168.0.2", "10.180.0.0/16", (SVC,))
STALE = "KUBE-SVC-STALESTALESTALE"
SAVED = f"*filter\n:KUBE-SVC-NOTNATNOTNAT - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:{STALE} - [0:0]\nCOMMIT\n"


def fake_kernel(monkeypatch, loaded: bool):
    calls = []
    monkeypatch.setattr(sync, "resolve_backend", lambda b: b)
    monkeypatch.setattr(sync, "read_tcp_liberal", lambda path: False)
    monkeypatch.setattr(sync.nfacct, "ensure", lambda path, names: True)
    monkeypatch.setattr(sync, "tables_loaded", lambda path: loaded)
    monkeypatch.setattr(sync, "save", lambda path, backend, table=None: calls.append(("save", table)) or SAVED)
    monkeypatch.setattr(sync, "_run", lambda path, argv, **kw: calls.append(("run", argv[3:])) or _Done())
    monkeypatch.setattr(sync, "restore", lambda path, argv, lines: calls.append(("restore", "".join(
        line + "\n" for line in lines))) or calls[-1][1])
    return calls


class _Done:
    returncode = 0
    stderr = ""


def test_fresh_node_gets_base_chains_and_rules_in_one_restore_without_a_save(monkeypatch):
    calls = fake_kernel(monkeypatch, loaded=False)
    result = sync.IptablesProxier("/fake", "legacy").sync(SNAP)
    rules = rd.render(SNAP, nfacct=True)
    assert calls == [("restore", rd.base_restore() + rules)]
    assert result.full and result.stale_chains == [] and result.restore_input == rd.base_restore() + rules


def test_nft_backend_reads_the_ruleset_once_to_see_a_fresh_node(monkeypatch):
    calls = fake_kernel(monkeypatch, loaded=False)
    monkeypatch.setattr(sync, "save", lambda path, backend, table=None: calls.append(("save", table)) or "")
    sync.IptablesProxier("/fake", "nft").sync(SNAP)
    assert [c[0] for c in calls] == ["save", "restore"] and calls[0] == ("save", None)


def test_full_sync_of_a_programmed_node_reads_iptables_save_once(monkeypatch):
    """The save that shows the node is not fresh also names the stale nat chains."""
    calls = fake_kernel(monkeypatch, loaded=True)
    result = sync.IptablesProxier("/fake", "legacy").sync(SNAP)
    assert [c for c in calls if c[0] == "save"] == [("save", None)]
    assert [c[0] for c in calls].count("restore") == 1 and calls[-1][0] == "restore"
    assert result.stale_chains == [STALE]  # nat's only: filter's look-alike is not kube-proxy's
    assert f"-X {STALE}\n" in result.restore_input and not result.restore_input.startswith("*mangle")
