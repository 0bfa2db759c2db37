"""The controller's objects, shaped like ingress-nginx's install manifest (deploy/static/
provider/cloud/deploy.yaml): namespace `ingress-nginx`, Deployment and LoadBalancer Service
`ingress-nginx-controller` (ports http 80 and https 443), IngressClass `nginx`. Added to a
scenario that has an Ingress or whose Cluster document says `spec.ingress: nginx`. Pure."""

from __future__ import annotations

import dataclasses

from minikp.scenario.ingress import IngressClass
from minikp.scenario.model import (Container, ContainerPort, PodTemplate, Scenario, Service,
                                   ServicePort, StoredObject, Workload)

NAMESPACE = "ingress-nginx"
NAME = "ingress-nginx-controller"
IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.11.3"
CONTROLLER = "k8s.io/ingress-nginx"  # IngressClass spec.controller
CLASS = "nginx"
LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx",
          "app.kubernetes.io/component": "controller"}
PORTS = (("http", 80), ("https", 443))


def is_controller_image(image: str) -> bool:
    """ingress-nginx's controller image (any registry, tag or digest)."""
    ref = image.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}".endswith("ingress-nginx/controller")


def wanted(scenario: Scenario) -> bool:
    return scenario.cluster.ingress == "nginx" or any(o.kind == "Ingress" for o in scenario.stored)


def installed(scenario: Scenario) -> bool:
    return any((w.namespace, w.name) == (NAMESPACE, NAME) for w in scenario.workloads)


def with_controller(scenario: Scenario) -> Scenario:
    """A copy of `scenario` (new lists, the same objects in them) with the controller's
    objects when it wants them and has none (objects of the same name it defines itself
    are kept)."""
    if not wanted(scenario) or installed(scenario):
        return scenario
    scenario = dataclasses.replace(scenario, namespaces=list(scenario.namespaces),
                                   workloads=list(scenario.workloads),
                                   services=list(scenario.services), stored=list(scenario.stored))
    if NAMESPACE not in scenario.namespaces:
        scenario.namespaces.append(NAMESPACE)
    template = PodTemplate(labels=dict(LABELS), containers=[Container(
        "controller", IMAGE, [ContainerPort(port, "TCP", name) for name, port in PORTS],
        args=["/nginx-ingress-controller", f"--ingress-class={CLASS}",
              f"--publish-service=$(POD_NAMESPACE)/{NAME}"])])
    scenario.workloads.append(Workload("Deployment", NAMESPACE, NAME, template, 1, dict(LABELS)))
    if not any((s.namespace, s.name) == (NAMESPACE, NAME) for s in scenario.services):
        scenario.services.append(Service(
            NAMESPACE, NAME, "LoadBalancer", dict(LABELS),
            [ServicePort(port, "TCP", name, name, app_protocol=name) for name, port in PORTS],
            labels=dict(LABELS)))
    if not any(o.kind == "IngressClass" and o.name == CLASS for o in scenario.stored):
        manifest = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                    "metadata": {"name": CLASS, "labels": dict(LABELS), "annotations": {
                        "ingressclass.kubernetes.io/is-default-class": "true"}},
                    "spec": {"controller": CONTROLLER}}
        scenario.stored.append(StoredObject("networking.k8s.io/v1", "IngressClass", "", CLASS,
                                            manifest, model=IngressClass(CLASS, CONTROLLER, True)))
    return scenario
