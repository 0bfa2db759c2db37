"""The DNS pods' metrics port (9153, as CoreDNS's prometheus plugin): Prometheus text with
real counters of the dnsmasq in the same pod, read from its query log (`--log-queries=extra`:
each query gets a serial number, its question and where the answer came from).

Counters use CoreDNS's metric names, so that the posts' queries and dashboards apply:
- coredns_dns_requests_total{type}: queries by record type (A, AAAA, SRV, PTR, ...);
- coredns_dns_responses_total{rcode}: answers by rcode (NOERROR, NXDOMAIN);
- coredns_cache_hits_total{type="success"}: answers dnsmasq gave from its cache (its hosts
  file of Service and pod records is loaded into that cache, and `cached` answers);
- coredns_cache_misses_total: answers made from configuration instead (CNAME/SRV lines, and
  NXDOMAIN for names it does not know).

- QueryCounts.feed(log_text): count the complete lines (pure).
- render(counts) -> str: the exposition text (pure).
- MetricsServer(netns_path, ip, log_path): HTTP on ip:9153 inside the pod's namespace,
  one thread; GET /metrics reads the log's new lines, then answers.
"""

from __future__ import annotations

import collections
import http.server
import re
import socket
import threading

from minikp.nsenter import in_netns

PORT = 9153
SERVER = "dns://:53"
# "<serial> <client>/<port> query[A] name from 10.244.1.3"
_QUERY = re.compile(r"\]: (\d+) \S+ query\[(\w+)\] ")
# "<serial> <client>/<port> <source> name is <answer>"; source: cached | config | a path
_ANSWER = re.compile(r"\]: (\d+) \S+ (cached|config|/\S+|\S+) \S+ is (.*)$")


class QueryCounts:
    def __init__(self):
        self.requests: collections.Counter[str] = collections.Counter()
        self.responses: collections.Counter[str] = collections.Counter()
        self.cache_hits = self.cache_misses = 0
        self._open: set[str] = set()  # queries not answered yet (their first answer counts)
        self._partial = ""

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the rest
        for line in lines:
            if m := _QUERY.search(line):
                self.requests[m.group(2)] += 1
                self._open.add(m.group(1))
            elif (m := _ANSWER.search(line)) and m.group(1) in self._open:
                self._open.discard(m.group(1))
                source, answer = m.group(2), m.group(3)
                self.responses["NXDOMAIN" if answer == "NXDOMAIN" else "NOERROR"] += 1
                if source == "cached" or source.startswith("/"):
                    self.cache_hits += 1
                else:
                    self.cache_misses += 1


def render(c: QueryCounts) -> str:
    out = ["# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.",
           "# TYPE coredns_dns_requests_total counter"]
    out += [f'coredns_dns_requests_total{{server="{SERVER}",zone=".",type="{t}"}} {n}'
            for t, n in sorted(c.requests.items())]
    out += ["# HELP coredns_dns_responses_total Counter of response status codes.",
            "# TYPE coredns_dns_responses_total counter"]
    out += [f'coredns_dns_responses_total{{server="{SERVER}",zone=".",rcode="{r}"}} {n}'
            for r, n in sorted(c.responses.items())]
    out += ["# HELP coredns_cache_hits_total The count of cache hits.",
            "# TYPE coredns_cache_hits_total counter",
            f'coredns_cache_hits_total{{server="{SERVER}",type="success"}} {c.cache_hits}',
            "# HELP coredns_cache_misses_total The count of cache misses.",
            "# TYPE coredns_cache_misses_total counter",
            f'coredns_cache_misses_total{{server="{SERVER}"}} {c.cache_misses}']
    return "\n".join(out) + "\n"


class MetricsServer:
    def __init__(self, netns_path: str, ip: str, log_path: str, port: int = PORT):
        self.netns_path, self.ip, self.port, self.log_path = netns_path, ip, port, log_path
        self.counts = QueryCounts()
        self._offset = 0
        self._lock = threading.Lock()
        self._httpd: http.server.HTTPServer | None = None

    def scrape(self) -> str:
        with self._lock:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            self._offset += len(data)
            self.counts.feed(data.decode(errors="replace"))
            return render(self.counts)

    def start(self) -> None:
        with in_netns(self.netns_path):  # the socket stays in the pod's namespace
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.ip, self.port))
        sock.listen(16)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = server.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer((self.ip, self.port), Handler,
                                                bind_and_activate=False)
        httpd.socket.close()
        httpd.socket = sock
        httpd.daemon_threads = True
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name=f"dns-metrics-{self.ip}",
                         daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
