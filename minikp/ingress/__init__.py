"""An ingress-nginx-shaped ingress controller: its install (install.py: namespace, Deployment,
LoadBalancer Service, IngressClass, as the real manifests have them), nginx.conf from the
Ingresses (render.py, pure) and the real nginx it runs in each controller pod (nginx.py)."""
