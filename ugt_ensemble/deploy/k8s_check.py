"""Offline checks of the rendered manifests (no cluster).

- Kubernetes' own kinds (Deployment, Service, HorizontalPodAutoscaler) against the JSON schemas of a
  pinned Kubernetes version (`kubernetes-validate`, strict: unknown fields are errors).
- The CRDs, whose schemas are not Kubernetes': ServiceMonitor, PrometheusRule and InferenceService structurally
  (apiVersion, kind, the fields that matter); the InferenceService's predictor container and volumes
  are also validated as a Pod's, against the Kubernetes schemas.
- References between the objects: volume mounts name volumes, the Services' target ports name
  container ports, the selectors match the pod labels, the autoscaler targets the Deployment.
- Security (`k8s_security`): the operator key's restriction flags and Secret, a read-only root
  filesystem, RuntimeDefault seccomp, a CPU limit, and no metrics port on the client Service.
"""

from __future__ import annotations

import re
from typing import Any

from ugt_ensemble.deploy.k8s_security import check_security
from ugt_ensemble.deploy.options import KUBERNETES_VERSION
from ugt_ensemble.errors import MissingDependencyError

CRDS = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "InferenceService": "serving.kserve.io/v1beta1",
}
_DURATION = re.compile(r"^\d+(ms|s|m|h)$")
_STORAGE = re.compile(r"^(pvc|s3|gs|as|https?)://\S+$")
#: InferenceService model fields that are KServe's, not a Container's.
INSTALL_HINT = "pip install 'ugt-ensemble[test]', or skip the check with --no-check"
_MODEL_FIELDS = ("modelFormat", "protocolVersion", "runtimeVersion", "runtime", "storageUri")


def load_documents(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    """ "kind" -> the parsed object, for the rendered files (one object per file); a second object of
    a kind is keyed "kind/name" (the metrics Service: "Service/<name>-metrics")."""
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError(f"PyYAML is not installed ({INSTALL_HINT})") from None
    documents = {}
    for text in rendered.values():
        for document in yaml.safe_load_all(text):
            if document:
                kind = document["kind"]
                documents[kind if kind not in documents else f"{kind}/{document['metadata']['name']}"] = document
    return documents


def check_manifests(rendered: dict[str, str], kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """Every finding (an empty list: the manifests pass)."""
    documents = load_documents(rendered)
    errors: list[str] = []
    for document in (documents[key] for key in sorted(documents)):
        kind = document["kind"]
        if kind in CRDS:
            errors += _check_crd(document)
        else:
            errors += schema_errors(document, kubernetes_version)
    if "InferenceService" in documents:
        errors += schema_errors(_predictor_pod(documents["InferenceService"]), kubernetes_version, "InferenceService")
    return errors + check_references(documents) + _security(documents)


def _security(documents: dict[str, dict[str, Any]]) -> list[str]:
    pods = {}
    if "Deployment" in documents:
        pods["Deployment"] = documents["Deployment"]["spec"]["template"]["spec"]
    if "InferenceService" in documents:
        pods["InferenceService"] = _predictor_pod(documents["InferenceService"])["spec"]
    services = [d for d in documents.values() if d["kind"] == "Service"]
    return check_security(pods, services, documents.get("ServiceMonitor"))


def schema_errors(document: dict[str, Any], kubernetes_version: str, label: str | None = None) -> list[str]:
    """The findings of kubernetes-validate (strict) for one object."""
    try:
        import kubernetes_validate
    except ImportError:
        raise MissingDependencyError(f"kubernetes-validate is not installed ({INSTALL_HINT})") from None
    try:
        kubernetes_validate.validate(document, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        return [f"{label or document.get('kind')}: {where}: {exc.message} (Kubernetes {kubernetes_version})"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{label or document.get('kind')}: {exc.message}"]
    return []


def check_references(documents: dict[str, dict[str, Any]]) -> list[str]:
    """Cross-object consistency that no schema sees."""
    errors: list[str] = []
    deployment = documents.get("Deployment")
    if deployment is None:
        return errors
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    errors += _mounts_match(pod["spec"], "Deployment")
    if not deployment["spec"]["selector"]["matchLabels"].items() <= labels.items():
        errors.append("Deployment: the selector does not match the pod labels")
    port_names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    services = [d for d in documents.values() if d["kind"] == "Service"]
    for service in services:
        name = service["metadata"]["name"]
        if not service["spec"]["selector"].items() <= labels.items():
            errors.append(f"Service {name}: the selector does not match the pod labels")
        errors += [f"Service {name}: targetPort {p['targetPort']} is no container port"
                   for p in service["spec"]["ports"] if p["targetPort"] not in port_names]  # fmt: skip
    monitor = documents.get("ServiceMonitor")
    if monitor is not None and services:
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        selected = [s for s in services if wanted <= s["metadata"].get("labels", {}).items()]
        ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
        endpoints = monitor["spec"].get("endpoints", []) if selected else []
        if not selected:
            errors.append("ServiceMonitor: the selector matches no Service's labels")
        errors += [f"ServiceMonitor: port {e['port']} is on no Service it selects"
                   for e in endpoints if e.get("port") not in ports]  # fmt: skip
    hpa = documents.get("HorizontalPodAutoscaler")
    if hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        errors.append("HorizontalPodAutoscaler: scaleTargetRef is not the Deployment")
    return errors


def _mounts_match(pod_spec: dict[str, Any], label: str) -> list[str]:
    volumes = {v["name"] for v in pod_spec.get("volumes", [])}
    mounts = [m["name"] for c in pod_spec.get("containers", []) for m in c.get("volumeMounts", [])]
    return [f"{label}: volumeMount {m} names no volume" for m in mounts if m not in volumes]


def _check_crd(document: dict[str, Any]) -> list[str]:
    kind = document["kind"]
    errors = [] if document.get("apiVersion") == CRDS[kind] else [f"{kind}: apiVersion must be {CRDS[kind]}"]
    if not isinstance(document.get("metadata", {}).get("name"), str):
        errors.append(f"{kind}: metadata.name is missing")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return errors + [f"{kind}: spec is missing"]
    checks = {"ServiceMonitor": _service_monitor, "PrometheusRule": _prometheus_rule}
    return errors + checks.get(kind, _inference_service)(spec)


def _service_monitor(spec: dict[str, Any]) -> list[str]:
    errors = []
    if not spec.get("selector", {}).get("matchLabels"):
        errors.append("ServiceMonitor: spec.selector.matchLabels is empty")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        return errors + ["ServiceMonitor: spec.endpoints is empty"]
    for i, endpoint in enumerate(endpoints):
        if not isinstance(endpoint.get("port"), str):
            errors.append(f"ServiceMonitor: endpoints[{i}].port must name a Service port")
        if not str(endpoint.get("path", "/metrics")).startswith("/"):
            errors.append(f"ServiceMonitor: endpoints[{i}].path must start with /")
        if "interval" in endpoint and not _DURATION.match(str(endpoint["interval"])):
            errors.append(f"ServiceMonitor: endpoints[{i}].interval {endpoint['interval']!r} is no duration")
    return errors


def _prometheus_rule(spec: dict[str, Any]) -> list[str]:
    """Groups with names and rules, each an alert or a record with an expression (promtool checks the PromQL)."""
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        return ["PrometheusRule: spec.groups is empty"]
    errors = []
    for i, group in enumerate(groups):
        rules = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(group, dict) or not group.get("name") or not isinstance(rules, list) or not rules:
            errors.append(f"PrometheusRule: groups[{i}] needs a name and rules")
            continue
        for j, rule in enumerate(rules):
            if not isinstance(rule.get("expr"), str) or bool(rule.get("alert")) == bool(rule.get("record")):
                errors.append(f"PrometheusRule: groups[{i}].rules[{j}] needs an expr and one of alert or record")
            if "for" in rule and not _DURATION.match(str(rule["for"])):
                errors.append(f"PrometheusRule: groups[{i}].rules[{j}].for {rule['for']!r} is no duration")
    return errors


def _inference_service(spec: dict[str, Any]) -> list[str]:
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        return ["InferenceService: spec.predictor is missing"]
    errors = []
    if ("model" in predictor) == ("containers" in predictor):
        errors.append("InferenceService: the predictor needs exactly one of model or containers")
    model = predictor.get("model")
    if isinstance(model, dict):
        if model.get("modelFormat", {}).get("name") != "triton":
            errors.append("InferenceService: predictor.model.modelFormat.name must be triton")
        if model.get("protocolVersion") != "v2":
            errors.append("InferenceService: predictor.model.protocolVersion must be v2")
        if not _STORAGE.match(str(model.get("storageUri", ""))):
            errors.append("InferenceService: predictor.model.storageUri is no storage URI")
    for key in ("minReplicas", "maxReplicas"):
        if key in predictor and not (isinstance(predictor[key], int) and predictor[key] >= 0):
            errors.append(f"InferenceService: predictor.{key} must be a non-negative integer")
    return errors + _mounts_match(_predictor_pod(spec)["spec"], "InferenceService")


def _predictor_pod(document_or_spec: dict[str, Any]) -> dict[str, Any]:
    """The predictor's container(s) and volumes as a Pod, for the Kubernetes schema."""
    spec = document_or_spec.get("spec", document_or_spec)
    predictor = spec.get("predictor", {})
    containers = list(predictor.get("containers", []))
    if "model" in predictor:
        container = {k: v for k, v in predictor["model"].items() if k not in _MODEL_FIELDS}
        containers.append({"name": "kserve-container", "image": "kserve-triton-runtime", **container})
    pod_spec = {"containers": containers, "volumes": predictor.get("volumes", [])}
    if "securityContext" in predictor:
        pod_spec["securityContext"] = predictor["securityContext"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_spec}
