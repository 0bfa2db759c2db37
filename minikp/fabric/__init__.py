"""The cluster's network: namespaces, veth pairs, bridges, addresses, routes, sysctls, all
through netlink (rtnl.py's plain requests) in-process.

Modules: netns (create/remove named namespaces, sysctls), world (the node network),
node, pod, client (one host kind each), cluster (the Fabric facade), teardown (remove a
cluster from kernel state alone).
"""

from minikp.fabric.cluster import Fabric

__all__ = ["Fabric"]
