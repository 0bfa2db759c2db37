"""The embedded proxy's ipvs mode: kube-proxy 1.33's ipvs proxier. render computes the wanted
virtual/real servers, kube-ipvs0 addresses, ipsets and iptables-restore text (pure); apply
drives IPVS, ipset and addresses over netlink (pyroute2) inside a node's namespace, touching
only what changed; proxier is the per-node object the supervisor syncs; kernel says whether
the running kernel can do it at all."""
