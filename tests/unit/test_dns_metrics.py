"""kube-dns's metrics port (issue 12 item 9): dnsmasq's query log → CoreDNS-named counters."""

from minikp.dns.metrics import QueryCounts, render

LOG = """Dec  2 13:37:50 dnsmasq[7]: started, version 2.90 cachesize 150
Dec  2 13:37:51 dnsmasq[7]: 1 10.244.1.3/41478 query[A] web.default.svc.cluster.local from 10.244.1.3
Dec  2 13:37:51 dnsmasq[7]: 1 10.244.1.3/41478 /run/minikp/c/pods/kube-system_coredns-a/hosts web.default.svc.cluster.local is 10.96.5.5
Dec  2 13:37:51 dnsmasq[7]: 2 10.244.1.3/48221 query[AAAA] web.default.svc.cluster.local from 10.244.1.3
Dec  2 13:37:51 dnsmasq[7]: 2 10.244.1.3/48221 config web.default.svc.cluster.local is NODATA-IPv6
Dec  2 13:37:51 dnsmasq[7]: 3 10.244.1.3/53000 query[A] nope.default.svc.cluster.local from 10.244.1.3
Dec  2 13:37:51 dnsmasq[7]: 4 10.244.2.3/53001 query[A] web.default.svc.cluster.local from 10.244.2.3
Dec  2 13:37:51 dnsmasq[7]: 3 10.244.1.3/53000 config nope.default.svc.cluster.local is NXDOMAIN
Dec  2 13:37:51 dnsmasq[7]: 4 10.244.2.3/53001 cached web.default.svc.cluster.local is 10.96.5.5
Dec  2 13:37:51 dnsmasq[7]: 4 10.244.2.3/53001 cached web.default.svc.cluster.local is 10.96.5.6
Dec  2 13:37:51 dnsmasq[7]: read /run/minikp/c/pods/kube-system_coredns-a/hosts - 12 names
"""


def test_counts_queries_by_type_answers_by_rcode_and_cache_hits():
    c = QueryCounts()
    half = len(LOG) // 2  # a line cut in two by a read counts once, when complete
    c.feed(LOG[:half])
    c.feed(LOG[half:])
    assert c.requests == {"A": 3, "AAAA": 1}
    assert c.responses == {"NOERROR": 3, "NXDOMAIN": 1}  # query 4's second record: one answer
    assert (c.cache_hits, c.cache_misses) == (2, 2)
    text = render(c)
    assert 'coredns_dns_requests_total{server="dns://:53",zone=".",type="A"} 3\n' in text
    assert 'coredns_dns_responses_total{server="dns://:53",zone=".",rcode="NXDOMAIN"} 1\n' in text
    assert 'coredns_cache_hits_total{server="dns://:53",type="success"} 2\n' in text
    assert "# TYPE coredns_cache_misses_total counter\n" in text
