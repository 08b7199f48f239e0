"""`K8sOptions`: what `python -m ugt_ensemble k8s` renders, beyond what the repository itself says.

Standard library only, so the command's parser stays light (the CLI reads each flag's default here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ugt_ensemble.errors import ConfigError

#: NVIDIA's Triton container release whose server (2.51.0) matches the nvidia-pytriton 0.7.0 wheel and
#: the tritonclient 2.51.0 this package tests with.
NGC_TAG = "24.10-py3"
NGC_IMAGE = f"nvcr.io/nvidia/tritonserver:{NGC_TAG}"
#: The Kubernetes version whose schemas the manifests are validated against (kubernetes-validate).
KUBERNETES_VERSION = "1.32.0"
#: Object storage schemes Triton reads a model repository from.
OBJECT_STORES = ("s3://", "gs://", "as://")
HPA_METRICS = ("queue-time", "pending")
SERVERS = ("auto", "ngc", "cpu-wheel")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?$")
_UNITS = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
_CPU = re.compile(r"^(\d+(?:\.\d+)?|\d+m)$")


@dataclass(frozen=True)
class K8sOptions:
    """Deployment choices (the repository decides the rest: names, GPUs, shared memory).

    Attributes:
        name: the Deployment / Service / InferenceService name (None: the ensemble's, as a DNS label).
        namespace: metadata.namespace of every object (None: the kubectl context's).
        server: "ngc" (NVIDIA's container), "cpu-wheel" (the image of docker/Dockerfile.cpu), or "auto":
            ngc when the repository is loadable there, else cpu-wheel.
        image: the container image (None: NGC_IMAGE for ngc; ugt-ensemble-cpu:<version> for cpu-wheel).
        repository_source: "pvc:NAME" (a PersistentVolumeClaim whose root is the repository, mounted
            read-only at /models), "s3://...", "gs://..." or "as://..." (Triton reads it; ngc only),
            or "image" (the repository was copied into the image at /models).
        storage_secret: a Secret whose keys become environment variables (object-storage credentials,
            e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
        operator_key_secret: the Secret whose key `operator-key` holds the operator key that tritonserver
            demands for load/unload, logging, trace and shared memory (None: "<name>-operator-key").
            Not rendered: create it with `kubectl create secret` (the command prints how).
        gpus: GPUs per pod (None: those the repository's KIND_GPU instance groups name).
        cpu, memory: container requests (memory is also the limit; the /dev/shm tmpfs counts against it).
        cpu_limit: the container's CPU limit (None: the request, so that a pod never takes more than it asked).
        replicas, min_replicas, max_replicas: the Deployment's start and the autoscaler's range.
        hpa_metric: "queue-time" (average queue time per request at the model step, microseconds) or
            "pending" (requests waiting at the model step, per pod).
        hpa_target: the metric's per-pod target (None: 3000 us; pending: one full batch per instance).
        cpu_target_percent: the CPU utilisation target, the fallback signal.
    """

    name: str | None = None
    namespace: str | None = None
    server: str = "auto"
    image: str | None = None
    repository_source: str = "pvc:ugt-ensemble-repository"
    storage_secret: str | None = None
    operator_key_secret: str | None = None
    gpus: int | None = None
    cpu: str = "2"
    cpu_limit: str | None = None
    memory: str = "4Gi"
    replicas: int = 1
    min_replicas: int = 1
    max_replicas: int = 8
    hpa_metric: str = "queue-time"
    hpa_target: float | None = None
    cpu_target_percent: int = 80

    def __post_init__(self) -> None:
        labels = {"name": self.name, "namespace": self.namespace, "secret": self.storage_secret,
                  "operator key secret": self.operator_key_secret}  # fmt: skip
        for label, value in labels.items():
            if value is not None and not _DNS_LABEL.match(value):
                raise ConfigError(f"{label} {value!r} is not a DNS label (lower-case letters, digits, '-')")
        if self.server not in SERVERS:
            raise ConfigError(f"server must be one of {', '.join(SERVERS)}; got {self.server!r}")
        if self.hpa_metric not in HPA_METRICS:
            raise ConfigError(f"hpa metric must be one of {', '.join(HPA_METRICS)}; got {self.hpa_metric!r}")
        if not 1 <= self.min_replicas <= self.max_replicas or self.replicas < 1:
            raise ConfigError(f"replicas: need 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})")
        if self.gpus is not None and self.gpus < 0:
            raise ConfigError(f"gpus must be >= 0; got {self.gpus}")
        if self.hpa_target is not None and self.hpa_target <= 0:
            raise ConfigError(f"hpa target must be > 0; got {self.hpa_target}")
        if not 1 <= self.cpu_target_percent <= 100:
            raise ConfigError(f"cpu target must be 1-100 %; got {self.cpu_target_percent}")
        quantity_bytes(self.memory)
        for label, cpu in (("cpu", self.cpu), ("cpu limit", self.cpu_limit)):
            if cpu is not None and not _CPU.match(cpu):
                raise ConfigError(f"{label} {cpu!r}: use a quantity such as 2, 1.5 or 500m")
        if self.cpu_limit is not None and cpu_millis(self.cpu_limit) < cpu_millis(self.cpu):
            raise ConfigError(f"cpu limit {self.cpu_limit} is below the request {self.cpu}: raise --cpu-limit")
        self.source_kind  # noqa: B018 - validates repository_source

    @property
    def source_kind(self) -> str:
        """ "pvc", "url" or "image" (ConfigError for anything else)."""
        source = self.repository_source
        if source == "image":
            return "image"
        if source.startswith(OBJECT_STORES) and len(source) > 5:
            return "url"
        if source.startswith("pvc:") and _DNS_LABEL.match(source[4:]):
            return "pvc"
        raise ConfigError(f"repository source {source!r}: use pvc:NAME, s3://..., gs://..., as://... or image")

    @property
    def pvc(self) -> str | None:
        return self.repository_source[4:] if self.source_kind == "pvc" else None


def quantity_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory quantity such as "4Gi", "512Mi" or "1073741824"."""
    match = _QUANTITY.match(quantity.strip())
    if not match:
        raise ConfigError(f"memory {quantity!r}: use a quantity such as 4Gi or 512Mi")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def dns_label(name: str) -> str:
    """`name` as a DNS label: lower case, '_' and '.' as '-', at most 63 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return label if label and label[0].isalpha() else f"ugt-{label}".rstrip("-")


def cpu_millis(quantity: str) -> float:
    """Millicores of a Kubernetes CPU quantity such as "2", "1.5" or "500m"."""
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000
