"""kube-proxy 1.33's nftables mode: the `ip kube-proxy` table (names, a pure renderer of the
`nft -f` transaction, and the proxier that applies it inside a node's namespace)."""
