"""The embedded proxy: a per-node snapshot of Services and endpoints, rendered by a mode
(iptables, later ipvs/nftables/userspace) and applied in the node's network namespace."""
