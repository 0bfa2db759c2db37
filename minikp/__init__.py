"""minikp: Kubernetes Service networking on Linux network namespaces, with no Kubernetes.

KUBE_PROXY_VERSION is the kube-proxy release whose rule format the embedded proxy writes.
"""

__version__ = "0.1.0"
KUBE_PROXY_VERSION = "1.33"
