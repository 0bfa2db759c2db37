"""Which built-in server a container gets from its image, ports and command (SPEC §2)."""

import pytest

from minikp.scenario.model import Container, ContainerPort
from minikp.workloads.images import (HTTP, NAME, Listener, client_listeners, image_name,
                                     is_dns_image, listeners_for)
from minikp.workloads.runtime import choose


def c(image, ports=(), command=None, args=None):
    return Container("c", image, [ContainerPort(p, proto) for p, proto in ports], command, args)


@pytest.mark.parametrize("image,name", [
    ("nginx", "nginx"),
    ("nginx:1.27-alpine", "nginx"),
    ("docker.io/library/nginx:latest", "nginx"),
    ("localhost:5000/team/httpd:2.4", "httpd"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", "agnhost"),
    ("k8s.gcr.io/serve_hostname@sha256:" + "a" * 64, "serve_hostname"),
    ("Registry.Example:443/CoreDNS/CoreDNS:v1.11.1", "coredns"),
])
def test_image_name_strips_registry_tag_and_digest(image, name):
    assert image_name(image) == name


@pytest.mark.parametrize("image", ["k8s.gcr.io/serve_hostname", "serve_hostname:v1.4",
                                   "gcr.io/google_containers/serve_hostname-amd64:1.1"])
def test_serve_hostname_serves_tcp_http_and_udp_name_on_9376_by_default(image):
    assert listeners_for(c(image)) == [Listener("TCP", 9376, HTTP), Listener("UDP", 9376, NAME)]


def test_serve_hostname_on_each_declared_port_both_protocols_once():
    got = listeners_for(c("k8s.gcr.io/serve_hostname", [(8080, "TCP"), (8080, "UDP"), (53, "UDP")]))
    assert got == [Listener("TCP", 8080, HTTP), Listener("UDP", 8080, NAME),
                   Listener("TCP", 53, HTTP), Listener("UDP", 53, NAME)]


def test_agnhost_is_not_serve_hostname_unless_its_subcommand_says_so():
    plain = c("registry.k8s.io/e2e-test-images/agnhost:2.39", [(8080, "TCP")], args=["netexec"])
    assert listeners_for(plain) == [Listener("TCP", 8080, HTTP)]
    assert listeners_for(c("registry.k8s.io/e2e-test-images/agnhost:2.39")) == []
    sh = c("registry.k8s.io/e2e-test-images/agnhost:2.39", args=["serve-hostname", "--port", "9000"])
    assert listeners_for(sh) == [Listener("TCP", 9000, HTTP), Listener("UDP", 9000, NAME)]
    sh_eq = c("agnhost", args=["serve-hostname", "--udp", "--port=7000"])
    assert Listener("UDP", 7000, NAME) in listeners_for(sh_eq)


@pytest.mark.parametrize("image", ["nginx", "nginx:1.25", "docker.io/library/httpd:2.4"])
def test_web_servers_default_to_port_80(image):
    assert listeners_for(c(image)) == [Listener("TCP", 80, HTTP)]


def test_declared_ports_win_over_the_web_server_default():
    assert listeners_for(c("nginx", [(8080, "TCP"), (8443, "TCP")])) == [
        Listener("TCP", 8080, HTTP), Listener("TCP", 8443, HTTP)]


def test_unknown_image_serves_http_on_tcp_ports_and_name_on_udp_ports_and_skips_sctp():
    got = listeners_for(c("example.com/my/app:v2", [(8080, "TCP"), (5353, "UDP"), (9999, "SCTP")]))
    assert got == [Listener("TCP", 8080, HTTP), Listener("UDP", 5353, NAME)]
    assert listeners_for(c("example.com/my/app:v2")) == []  # nothing declared: nothing served
    assert listeners_for(c("", [(80, "TCP")])) == [Listener("TCP", 80, HTTP)]


@pytest.mark.parametrize("image,dns", [
    ("registry.k8s.io/coredns/coredns:v1.11.1", True), ("coredns/coredns", True),
    ("k8s.gcr.io/k8s-dns-kube-dns-amd64:1.14.13", True), ("kube-dns", True),
    ("nginx", False), ("k8s.gcr.io/serve_hostname", False)])
def test_dns_images(image, dns):
    assert is_dns_image(image) is dns
    assert (choose(None, c(image, [(53, "UDP")])) == "dns") is dns  # dnsmasq serves it


def test_a_command_replaces_the_builtin_server():
    cont = c("k8s.gcr.io/serve_hostname", [(9376, "TCP")], command=["sleep", "100"])
    assert choose(None, cont) == "command"
    # args alone (no command) keep the image's built-in behaviour
    assert choose(None, c("nginx", args=["-g", "daemon off;"])) == "builtin"
    # a DNS image is the cluster DNS even with a command
    assert choose(None, c("coredns/coredns", command=["/coredns"])) == "dns"


def test_clients_serve_http_on_80():
    assert client_listeners() == [Listener("TCP", 80, HTTP)]
