"""What the Kubernetes manifests promise about security, and the offline check that they keep it.

- tritonserver demands the operator key for load/unload, logging, trace and shared memory: its command
  (or, on KServe's Triton runtime, the args appended to it) carries the restriction flags with the key as
  `$(UGT_OPERATOR_KEY)`, or it is `python -m ugt_ensemble serve`, which always adds them; the variable
  comes from a Secret (`secretKeyRef`) that the operator creates (`secret_command`), never from a file here.
- Containers run with a read-only root filesystem, the RuntimeDefault seccomp profile and a CPU limit.
- The Service that clients reach exposes HTTP and gRPC only; metrics are on a Service of their own.
"""

from __future__ import annotations

from typing import Any

from ugt_ensemble.server.operator_key import ENV_KEY, HEADER, restricted_api_args

#: The key inside the operator-key Secret, and the run-state folder (a writable emptyDir).
SECRET_KEY = "operator-key"
STATE_DIR = "/run/ugt-ensemble"
METRICS_PORT_NAME = "metrics"


def restriction_flags() -> tuple[str, str]:
    """tritonserver's restriction flags with the key as `$(UGT_OPERATOR_KEY)`: Kubernetes expands it from
    the container's environment (the Secret) when it starts the container."""
    return restricted_api_args(f"{HEADER}=$({ENV_KEY})")


def secret_command(secret: str, namespace: str | None) -> str:
    """The kubectl command that creates the operator-key Secret with a fresh random key."""
    where = f" --namespace {namespace}" if namespace else ""
    value = "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    return f'kubectl create secret generic {secret}{where} --from-literal={SECRET_KEY}="{value}"'


def check_security(pods: dict[str, dict[str, Any]], services: list[dict[str, Any]], monitor: dict | None) -> list[str]:
    """Findings against the promises above; `pods`: label -> pod spec, `monitor`: the ServiceMonitor."""
    errors: list[str] = []
    for label, pod in pods.items():
        pod_seccomp = _seccomp(pod.get("securityContext"))
        for container in pod.get("containers", []):
            errors += [f"{label}: container {container.get('name')}: {e}" for e in _container(container, pod_seccomp)]
    selected = monitor["spec"]["selector"].get("matchLabels", {}) if monitor else None
    for service in services:
        chosen = selected is not None and selected.items() <= service["metadata"].get("labels", {}).items()
        exposed = [p for p in service["spec"].get("ports", []) if p.get("targetPort") == METRICS_PORT_NAME]
        if exposed and not chosen:
            errors.append(f"Service {service['metadata']['name']}: exposes metrics beside the client ports")
    return errors


def _container(container: dict[str, Any], pod_seccomp: bool) -> list[str]:
    errors = []
    context = container.get("securityContext") or {}
    if context.get("readOnlyRootFilesystem") is not True:
        errors.append("securityContext.readOnlyRootFilesystem must be true")
    if not (pod_seccomp or _seccomp(context)):
        errors.append("seccompProfile RuntimeDefault is missing (pod or container securityContext)")
    if "cpu" not in (container.get("resources") or {}).get("limits", {}):
        errors.append("resources.limits.cpu is missing")
    if not _key_from_secret(container):
        errors.append(f"env {ENV_KEY} must come from a Secret (valueFrom.secretKeyRef)")
    if not _restricted(container):
        errors.append("tritonserver runs without the operator key's restriction flags")
    return errors


def _seccomp(context: dict | None) -> bool:
    return ((context or {}).get("seccompProfile") or {}).get("type") == "RuntimeDefault"


def _key_from_secret(container: dict[str, Any]) -> bool:
    return any(
        e.get("name") == ENV_KEY and "secretKeyRef" in (e.get("valueFrom") or {}) for e in container.get("env", [])
    )


def _restricted(container: dict[str, Any]) -> bool:
    """The command line restricts the APIs: the flags, or `serve` (which always adds them)."""
    words = [*container.get("command", []), *container.get("args", [])]
    if words[:4] == ["python", "-m", "ugt_ensemble", "serve"]:
        return True
    return all(flag in words for flag in restriction_flags())
