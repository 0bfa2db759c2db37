"""The front-end calls that need no running cluster: picking objects out of a state, and
refusing a node or a proxy mode the state does not have."""

import pytest

from minikp import client
from minikp.errors import InputError


def _obj(name, namespace=None):
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"metadata": meta}


STATE = {
    "proxyMode": "iptables",
    "proxySettings": {"iptables_backend": "legacy", "sync_period_s": 30.0},
    "nodes": [_obj("node-1"), _obj("node-2")],
    "pods": [_obj("a", "default"), _obj("b", "default"), _obj("a", "kube-system")],
}


def test_objects_by_namespace_and_name():
    assert [o["metadata"]["namespace"] for o in client.objects(STATE, "pods", None, "a")] == [
        "default", "kube-system"]
    assert [o["metadata"]["name"] for o in client.objects(STATE, "pods", "default")] == ["a", "b"]
    assert len(client.objects(STATE, "nodes", "default")) == 2  # nodes have no namespace


def test_node_proxier_refuses_an_unknown_node_naming_the_nodes():
    with pytest.raises(InputError, match='no node "node-9"; nodes: node-1, node-2'):
        client.node_proxier("c", STATE, "node-9")


def test_node_proxier_refuses_a_mode_without_a_proxier():
    with pytest.raises(InputError, match='"userspace" is not implemented'):
        client.node_proxier("c", {**STATE, "proxyMode": "userspace", "proxySettings": {}}, "node-1")


def test_node_for_address_picks_the_node_owning_the_ip():
    st = {"nodes": [{"metadata": {"name": n}, "status": {"addresses": [{"address": ip}]}}
                    for n, ip in (("node-1", "172.18.0.2"), ("node-2", "172.18.0.3"))]}
    assert client.node_for_address(st, "172.18.0.3:30080") == "node-2"
    assert client.node_for_address(st, "10.96.0.1:80") == "node-1"  # a ClusterIP: the first
