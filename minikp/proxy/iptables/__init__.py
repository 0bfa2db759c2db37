"""The embedded proxy's iptables mode: kube-proxy 1.33's (minikp.KUBE_PROXY_VERSION) iptables
rules rendered as the exact iptables-restore input (render), applied inside a node's
namespace with full/partial syncs, stale-chain removal, canary and UDP conntrack cleanup
(sync), read back through kernel counters (trace). names holds the chain-name hashes,
backend picks legacy or nft, nfacct creates kube-proxy's nfacct counters."""
