"""spec.proxy's kube-proxy options: read as KubeProxyConfiguration spells them, bad values
rejected with FILE:LINE."""

import textwrap

import pytest

from minikp.errors import InputError
from minikp.proxy.options import ConntrackOptions, ProxyOptions
from minikp.proxy import sysctls
from minikp.scenario.load import load_scenario

FULL = """\
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  proxy:
    iptables:
      syncPeriod: 1m
      minSyncPeriod: 2s
      masqueradeAll: true
      localhostNodePorts: false
    nodePortAddresses: [172.18.0.0/16, primary]
    clusterCIDR: 10.244.0.0/16
    detectLocalMode: ClusterCIDR
    conntrack:
      maxPerCore: 0
      min: 1000
      tcpEstablishedTimeout: 2h0m0s
      tcpCloseWaitTimeout: 30m
      udpTimeout: 45s
      udpStreamTimeout: 3m
"""


def load(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent(text))
    return load_scenario([str(p)]).cluster


def error(tmp_path, text):
    with pytest.raises(InputError) as e:
        load(tmp_path, text)
    assert e.value.exit_code == 2
    return str(e.value)


def test_every_option_read(tmp_path):
    c = load(tmp_path, FULL)
    assert c.proxy_options == ProxyOptions(
        sync_period_s=60.0, min_sync_period_s=2.0, masquerade_all=True, localhost_node_ports=False,
        node_port_addresses=("172.18.0.0/16", "primary"), cluster_cidr="10.244.0.0/16",
        detect_local_mode="ClusterCIDR",
        conntrack=ConntrackOptions(0, 1000, 7200, 1800, 45, 180))
    assert c.sync_period_s == 60.0


def test_defaults_are_kube_proxys(tmp_path):
    c = load(tmp_path, "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\n")
    assert c.proxy_options == ProxyOptions()
    assert sysctls.wanted(c.proxy_options.conntrack) == {
        "nf_conntrack_tcp_timeout_established": 86400, "nf_conntrack_tcp_timeout_close_wait": 3600}
    assert sysctls.conntrack_max(c.proxy_options.conntrack, cpus=2) == 131072
    assert sysctls.conntrack_max(ConntrackOptions(max_per_core=100000), cpus=2) == 200000


@pytest.mark.parametrize("line, snippet, message", [
    (6, "    iptables: {masqueradeAll: maybe}", "spec.proxy.iptables.masqueradeAll: 'maybe': must be true or false"),
    (6, "    nodePortAddresses: [10.0.0.0/33]", 'spec.proxy.nodePortAddresses[0]: "10.0.0.0/33": not an IPv4 CIDR'),
    (6, "    clusterCIDR: pods", 'spec.proxy.clusterCIDR: "pods": not an IPv4 CIDR'),
    (6, "    detectLocalMode: NodeCIDR", 'spec.proxy.detectLocalMode: "NodeCIDR": not modelled yet'),
    (6, "    detectLocalMode: Magic", "spec.proxy.detectLocalMode"),
    (6, "    conntrack: {udpTimeout: soon}", "spec.proxy.conntrack.udpTimeout: 'soon': a duration"),
    (6, "    conntrack: {min: -1}", "spec.proxy.conntrack.min: -1: must be an integer"),
    (6, "    iptables: {minSyncPeriod: 2d}", "spec.proxy.iptables.minSyncPeriod: '2d': a duration"),
    (6, "    iptables: {syncPeriod: 1s, minSyncPeriod: 5s}",
     "spec.proxy.iptables.syncPeriod: 1s: must be greater than or equal to spec.proxy.iptables.minSyncPeriod (5s)"),
    (6, "    minSyncPeriod: 1m",
     "spec.proxy.syncPeriod: 30s: must be greater than or equal to spec.proxy.minSyncPeriod (1m)"),
])
def test_bad_options_name_file_and_line(tmp_path, line, snippet, message):
    text = "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  proxy:\n" + snippet + "\n"
    err = error(tmp_path, text)
    assert f"c.yaml:{line}:" in err and 'Cluster "c"' in err and message in err, err
