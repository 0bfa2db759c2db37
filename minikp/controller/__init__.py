"""The per-cluster supervisor and its pure helpers: endpoints from pods, per-node proxy
snapshots, Kubernetes-shaped objects for `get`."""
