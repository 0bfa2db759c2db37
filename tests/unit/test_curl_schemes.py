"""`minikp curl` honours the URL's scheme (issue 12 item 3): the probe mode each scheme maps
to, bad URLs as bad input, and https against real loopback servers (one speaking TLS, one
plain HTTP) through the same probe code that runs inside pods."""

import http.server
import os
import ssl
import subprocess
import threading

import pytest

from minikp import client, probe
from minikp.errors import InputError


@pytest.mark.parametrize("url, expected", [
    ("http://hostnames/", ("http", "http://hostnames/")),
    ("hostnames/", ("http", "hostnames/")),
    ("https://hostnames:8443/x", ("https", "https://hostnames:8443/x")),
    ("udp://10.96.0.10:53", ("udp", "10.96.0.10:53")),
    ("UDP://hostnames:80/", ("udp", "hostnames:80")),
    ("tcp://10.96.0.1:443", ("tcp", "10.96.0.1:443")),
    ("dns://hostnames", ("dns", "hostnames")),
])
def test_each_scheme_picks_its_probe_mode(url, expected):
    assert client.curl_target(url) == expected


@pytest.mark.parametrize("url, message", [
    ("ftp://x/", "unsupported scheme 'ftp'"),
    ("udp://hostnames", "expected udp://HOST:PORT"),
    ("udp://hostnames:99999", "expected udp://HOST:PORT"),
    ("dns://", "expected dns://NAME"),
])
def test_bad_urls_are_bad_input(url, message):
    with pytest.raises(InputError, match=message) as e:
        client.curl_target(url)
    assert e.value.exit_code == 2


class _Name(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"tls-backend\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    made = []

    def start(tls: bool) -> int:
        srv = http.server.HTTPServer(("127.0.0.1", 0), _Name)
        if tls:
            key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", "/CN=backend", "-days", "1", "-keyout", str(key),
                            "-out", str(cert)], check=True, capture_output=True)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append(srv)
        return srv.server_address[1]

    yield start
    for srv in made:
        srv.shutdown()
        srv.server_close()


def test_https_speaks_tls_to_a_tls_backend(server):
    port = server(tls=True)
    [r] = probe.run("https", f"https://127.0.0.1:{port}/", 1, 5.0)
    assert r["ok"] and r["body"] == "tls-backend", r


def test_https_to_a_plain_http_backend_says_it_does_not_speak_tls(server):
    port = server(tls=False)
    [r] = probe.run("https", f"https://127.0.0.1:{port}/", 1, 5.0)
    assert not r["ok"]
    assert f"127.0.0.1:{port} does not speak TLS" in r["error"], r


def test_dns_answers_the_addresses_and_names_a_failed_lookup():
    [r] = probe.run("dns", "localhost", 1, 2.0)
    assert r["ok"] and r["body"] == "127.0.0.1", r
    [r] = probe.run("dns", "no-such-name.invalid", 1, 2.0)
    assert not r["ok"] and r["error"].startswith("no-such-name.invalid: "), r
