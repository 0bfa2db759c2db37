"""The embedded proxy's iptables mode: kube-proxy 1.33's (minikp.KUBE_PROXY_VERSION) iptables
rules rendered as the exact iptables-restore input (render), applied inside a node's
namespace with full/partial syncs, stale-chain removal and the canary (sync: IptablesProxier,
a minikp.proxy.base.Proxier), read back through kernel counters (trace). names holds the
chain-name hashes, backend picks legacy or nft, tools runs iptables-save and friends in the
namespace, nfacct creates kube-proxy's nfacct counters. What every mode shares (changed
services, categorised endpoints, UDP conntrack cleanup) lives one folder up."""
