"""The embedded proxy's userspace mode: kube-proxy's original proxier (last shipped in 1.25).
For each service port a socket in the node's namespace accepts what the portal rules
(rules: KUBE-PORTALS-*/KUBE-NODEPORT-*) redirect to it and copies bytes to an endpoint chosen
round robin (loadbalancer), trying the next endpoint when a connect fails. One event loop
thread (eventloop) serves every node's sockets; proxier ties them to a node's snapshot."""
