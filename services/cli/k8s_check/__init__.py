"""`make k8s-check`: the Kubernetes manifests render, validate and are safe to apply.

Renders every overlay under k8s/overlays with `kubectl kustomize`, then checks what the
render says: against the Kubernetes OpenAPI schemas (kubernetes-validate, offline), for
the security posture (checkov, offline), and for Vigil's own wiring (detector shards
versus ingest's routing, ports, probes, drain times, alert and dashboard queries). The
tools run from their own virtualenv; this package never talks to a cluster.
"""
