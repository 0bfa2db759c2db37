"""DNS records of the cluster as CoreDNS' kubernetes plugin serves them, computed from the
plan and the endpoints (pure).

- build_records(plan, endpoints) -> DnsRecords: every name the cluster DNS answers.
- resolv_conf(namespace, dns_ip, domain): the /etc/resolv.conf kubelet writes into a pod.
- host_resolv_conf(dns_ip, domain): the /etc/resolv.conf of nodes and clients.

What is answered (CoreDNS behaviour, `pods verified`-like for pod names):
  <svc>.<ns>.svc.<d>            A ClusterIP; headless: A of every published endpoint;
                                ExternalName: CNAME to spec.externalName (none if it is an IP
                                or the CNAMEs loop; dnsmasq would refuse to start)
  <ep>.<svc>.<ns>.svc.<d>       A of one published endpoint of any Service (headless or not);
                                <ep> is the endpoint's hostname, else its dashed IP
  _<port>._<proto>.<svc>...     SRV per named port (ClusterIP: → <svc>...;
                                headless: → each <ep>...)
  <svc>.<ns>.svc.<d> SRV        every port, named or not (CoreDNS matches any port/protocol)
  a-b-c-d.<ns>.pod.<d>          A of each known pod
  PTR                           ClusterIP → service name; endpoint IP → <ep>.<svc>...;
                                clients → a hostname (name order), else
                                their name; other pod IPs → the pod name
  client names and hostnames    A of the client (the closed world's "outside" hosts)

DnsRecords renders to the two things dnsmasq reads: a hosts file (A records; dnsmasq makes
the PTR of an address from its first name, so names are ordered by PTR preference; re-read on
SIGHUP) and config lines (cname=, srv-host=; read only when dnsmasq starts).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# Which name of an address answers its PTR query (lowest first), as CoreDNS picks it: the
# Service of a ClusterIP, then the endpoint names; then clients and pods, which CoreDNS does
# not answer but dnsmasq cannot leave without a PTR once they have an A record; a headless
# Service's own name never is one.
_PTR_CLUSTER_IP, _PTR_ENDPOINT, _PTR_CLIENT_HOST, _PTR_CLIENT, _PTR_POD, _PTR_NEVER = range(6)


@dataclass(frozen=True)
class Srv:
    name: str  # _<port>._<proto>.<svc>.<ns>.svc.<domain>, or the service name itself
    target: str
    port: int
    priority: int = 0
    weight: int = 100


@dataclass
class DnsRecords:
    domain: str = "cluster.local"
    hosts: dict[str, list[str]] = field(default_factory=dict)  # ip → names, first is the PTR
    cnames: dict[str, str] = field(default_factory=dict)  # alias → target
    srvs: list[Srv] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # records left out, and why

    def addresses(self, name: str) -> list[str]:
        """The A records of a name (for tests and `minikp` diagnostics)."""
        name = name.lower().rstrip(".")
        return sorted((ip for ip, names in self.hosts.items() if name in names), key=_ip_key)

    def ptr(self, ip: str) -> str | None:
        names = self.hosts.get(ip)
        return names[0] if names else None

    def hosts_text(self) -> str:
        """The hosts file for --addn-hosts: one name a line, the PTR name first per address."""
        lines = [f"{ip} {name}" for ip in sorted(self.hosts, key=_ip_key)
                 for name in self.hosts[ip]]
        return "".join(line + "\n" for line in lines)

    def config_lines(self) -> list[str]:
        """dnsmasq config lines for what a hosts file cannot say (CNAME and SRV records)."""
        lines = [f"cname={alias},{target}" for alias, target in sorted(self.cnames.items())]
        lines += [f"srv-host={s.name},{s.target},{s.port},{s.priority},{s.weight}"
                  for s in sorted(self.srvs, key=lambda s: (s.name, s.target, s.port))]
        return lines


def _ip_key(ip: str):
    try:
        a = ipaddress.ip_address(ip)
        return (a.version, int(a))
    except ValueError:
        return (9, ip)


def dashed(ip: str) -> str:
    """The endpoint/pod label of an address: 10.244.1.5 → 10-244-1-5."""
    return ip.replace(".", "-").replace(":", "-")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class _Builder:
    def __init__(self, domain: str):
        self.records = DnsRecords(domain=domain)
        self._prio: dict[tuple[str, str], int] = {}
        self._srvs: set[tuple[str, str, int]] = set()

    def a(self, name: str, ip: str, ptr: int) -> None:
        if not ip or ip == "None" or not _is_ip(ip):
            return
        key = (ip, name.lower().rstrip("."))
        self._prio[key] = min(ptr, self._prio.get(key, ptr))

    def srv(self, name: str, target: str, port: int) -> None:
        self._srvs.add((name, target, port))

    def done(self) -> DnsRecords:
        self._drop_cname_loops()
        by_ip: dict[str, list[tuple[int, str]]] = {}
        for (ip, name), prio in self._prio.items():
            by_ip.setdefault(ip, []).append((prio, name))
        self.records.hosts = {ip: [n for _, n in sorted(items)] for ip, items in by_ip.items()}
        # CoreDNS gives each of the n answers of one SRV query the weight floor(100/n), at least 1
        count: dict[str, int] = {}
        for name, _, _ in self._srvs:
            count[name] = count.get(name, 0) + 1
        self.records.srvs = [Srv(name, target, port, 0, max(1, 100 // count[name]))
                             for name, target, port in sorted(self._srvs)]
        return self.records

    def _drop_cname_loops(self) -> None:
        """ExternalNames that lead back to themselves: dnsmasq refuses to start with a CNAME
        loop, so those aliases get no record (NXDOMAIN) and are reported in `skipped`."""
        cnames = self.records.cnames
        looping = set()
        for alias in cnames:
            seen, name = set(), alias
            while name in cnames and name not in seen:
                seen.add(name)
                name = cnames[name]
            if name in seen:
                looping.add(alias)
        for alias in sorted(looping):
            self.records.skipped.append(f"{alias}: CNAME loop via {cnames.pop(alias)}")


def build_records(plan, endpoints: dict) -> DnsRecords:
    """Every record of the cluster DNS for a ClusterPlan (services, pods, clients, domain).
    `endpoints` maps "namespace/name" to ServiceEndpoints (addresses with ready/hostname, and
    per port name the endpoint ports), as minikp.controller.endpoints computes them."""
    domain = plan.config.cluster_domain.rstrip(".").lower()
    b = _Builder(domain)
    for sp in plan.services:
        svc = sp.service
        fqdn = f"{svc.name}.{svc.namespace}.svc.{domain}"
        if svc.type == "ExternalName":
            target = svc.external_name.lower().rstrip(".")
            if target and not _is_ip(target):  # CoreDNS serves no record for an IP here
                b.records.cnames[fqdn] = target
            continue
        headless = svc.headless or sp.cluster_ip == "None"
        if not headless:
            b.a(fqdn, sp.cluster_ip, _PTR_CLUSTER_IP)
            for p in svc.ports:
                b.srv(fqdn, fqdn, p.port)
                if p.name:
                    b.srv(f"_{p.name}._{p.protocol.lower()}.{fqdn}", fqdn, p.port)
        _endpoint_records(b, svc, fqdn, endpoints.get(f"{svc.namespace}/{svc.name}"), headless)
    for pod in plan.pods:
        if pod.ip:
            b.a(f"{dashed(pod.ip)}.{pod.namespace}.pod.{domain}", pod.ip, _PTR_POD)
    for client in plan.clients:
        for host in client.hostnames:
            b.a(host, client.ip, _PTR_CLIENT_HOST)
        b.a(client.name, client.ip, _PTR_CLIENT)
    return b.done()


def _endpoint_records(b: _Builder, svc, fqdn: str, eps, headless: bool) -> None:
    """The names of a Service's published endpoints (<hostname or dashed IP>.<svc>...), which
    CoreDNS answers for every Service; a headless one also gets the endpoint addresses under
    its own name and SRV records that point at the endpoint names."""
    if eps is None:
        return
    host_of: dict[str, str] = {}
    for addr in eps.addresses:
        if not (addr.ready or svc.publish_not_ready_addresses):
            continue
        host = f"{(addr.hostname or dashed(addr.ip)).lower()}.{fqdn}"
        host_of[addr.ip] = host
        b.a(host, addr.ip, _PTR_ENDPOINT)
        if headless:
            b.a(fqdn, addr.ip, _PTR_NEVER)
    if not headless:
        return
    for p in svc.ports:
        for e in eps.ports.get(p.name, []):
            if e.ip in host_of:
                b.srv(fqdn, host_of[e.ip], e.port)
                if p.name:
                    b.srv(f"_{p.name}._{p.protocol.lower()}.{fqdn}", host_of[e.ip], e.port)


def resolv_conf(namespace: str, dns_ip: str, domain: str) -> str:
    """The resolv.conf kubelet writes for a ClusterFirst pod."""
    domain = domain.rstrip(".")
    return (f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {dns_ip}\noptions ndots:5\n")


def host_resolv_conf(dns_ip: str, domain: str) -> str:
    """resolv.conf for nodes and clients: they are outside every namespace, so only the bare
    cluster domain is searched (`kubernetes.default.svc` and `web.default.svc` resolve, short
    service names do not, as on a machine configured to use the cluster DNS); the default
    ndots:1 keeps outside names like db.example.test from being tried under the domain first."""
    return f"search {domain.rstrip('.')}\nnameserver {dns_ip}\n"
