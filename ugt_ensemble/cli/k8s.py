"""`python -m ugt_ensemble k8s`: Kubernetes and KServe manifests for a built repository.

Writes deployment.yaml, service.yaml, metrics-service.yaml, servicemonitor.yaml and hpa.yaml (apply
them with `kubectl apply -f DIR`), and kserve/inferenceservice.yaml as the KServe alternative. The GPUs,
the /dev/shm size and the server kind come from the repository; the manifests are checked offline against
the pinned Kubernetes version's schemas when kubernetes-validate is installed. The operator key comes
from a Secret that is not rendered (no secret in a file): the command prints how to create it.

Monitoring: prometheusrule.yaml (alert rules) and grafana-dashboard.yaml (a ConfigMap for Grafana's dashboard
sidecar) are applied with the rest; monitoring/alerts.yaml (a Prometheus rule file) and monitoring/dashboard.json
(Grafana: Import) hold the same for a Prometheus and Grafana outside the cluster. --monitoring-only writes just
those two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.cli.flags import Flag, given
from ugt_ensemble.deploy.options import HPA_METRICS, KUBERNETES_VERSION, SERVERS, K8sOptions

FLAGS = [
    Flag("--name", K8sOptions, "name", "name of every object", str, metavar="NAME",
         default_text="the ensemble's, as a DNS label"),
    Flag("--namespace", K8sOptions, "namespace", "metadata.namespace", str, metavar="NAMESPACE",
         default_text="the kubectl context's"),
    Flag("--server", K8sOptions, "server", "ngc: NVIDIA's container; cpu-wheel: docker/Dockerfile.cpu's image; "
         "auto: ngc when the repository loads there", str, choices=SERVERS),
    Flag("--image", K8sOptions, "image", "container image", str, metavar="IMAGE",
         default_text="nvcr.io/nvidia/tritonserver (pinned tag) for ngc, ugt-ensemble-cpu:<version> for cpu-wheel"),
    Flag("--repository-source", K8sOptions, "repository_source",
         "pvc:NAME (mounted at /models), s3://... | gs://... | as://... (ngc), or image", str, metavar="SOURCE"),
    Flag("--storage-secret", K8sOptions, "storage_secret", "Secret with object-storage credentials (env)", str,
         metavar="SECRET"),
    Flag("--operator-key-secret", K8sOptions, "operator_key_secret",
         "Secret whose key operator-key holds the operator key (load/unload, logging, trace)", str,
         metavar="SECRET", default_text="NAME-operator-key"),
    Flag("--gpus", K8sOptions, "gpus", "GPUs per pod", int, metavar="N",
         default_text="the repository's KIND_GPU groups"),
    Flag("--cpu", K8sOptions, "cpu", "CPU request per pod", str, metavar="CPU"),
    Flag("--cpu-limit", K8sOptions, "cpu_limit", "CPU limit per pod", str, metavar="CPU",
         default_text="the request"),
    Flag("--memory", K8sOptions, "memory", "memory request and limit per pod (holds /dev/shm too)", str,
         metavar="QUANTITY"),
    Flag("--replicas", K8sOptions, "replicas", "Deployment replicas at start", int, metavar="N"),
    Flag("--min-replicas", K8sOptions, "min_replicas", "autoscaler minimum", int, metavar="N"),
    Flag("--max-replicas", K8sOptions, "max_replicas", "autoscaler maximum", int, metavar="N"),
    Flag("--hpa-metric", K8sOptions, "hpa_metric", "Triton signal to scale on (model step)", str,
         choices=HPA_METRICS),
    Flag("--hpa-target", K8sOptions, "hpa_target", "per-pod target of that signal", float, metavar="VALUE",
         default_text="3000 us queue time; pending: instances x max batch"),
    Flag("--cpu-target", K8sOptions, "cpu_target_percent", "CPU utilisation target (fallback), percent", int,
         metavar="PERCENT"),
]  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "k8s", parents=parents, help="Kubernetes / KServe manifests for a built repository", description=__doc__
    )
    p.add_argument(
        "--model-repository",
        type=Path,
        default=Path("ensemble"),
        metavar="DIR",
        help="the built repository (default: ensemble)",
    )
    p.add_argument(
        "--output-dir", type=Path, default=Path("k8s"), metavar="DIR", help="where the manifests go (default: k8s)"
    )
    p.add_argument(
        "--no-check", action="store_true", help=f"skip the offline schema check (Kubernetes {KUBERNETES_VERSION})"
    )
    p.add_argument(
        "--monitoring-only",
        action="store_true",
        help="write only monitoring/alerts.yaml and monitoring/dashboard.json (no manifests)",
    )
    for flag in FLAGS:
        flag.add_to(p)
    for field, help_text in ALERT_FLAGS.items():
        p.add_argument(f"--alert-{field.replace('_', '-')}", type=float, metavar="VALUE", dest=f"alert_{field}",
                       help=help_text)  # fmt: skip
    p.set_defaults(run=run)


#: AlertThresholds field -> the help of its --alert-* flag.
ALERT_FLAGS = {
    "error_ratio": "alert when this share of requests fails for 5 min (default: 0.05)",
    "p99_ms": "alert when the ensemble's p99 latency stays above this many ms for 5 min (default: 1000)",
    "queue_ms": "alert when a step's queue time per request stays above this many ms for 10 min (default: 3)",
    "short_ratio": "alert when this share of answers holds fewer than K items for 15 min (default: 0.2)",
}


def _thresholds(args: argparse.Namespace):  # noqa: ANN202 - AlertThresholds, imported lazily
    from ugt_ensemble.deploy.monitoring import AlertThresholds

    given_values = {f: getattr(args, f"alert_{f}") for f in ALERT_FLAGS if getattr(args, f"alert_{f}") is not None}
    return AlertThresholds(**given_values)


def _monitoring_only(args: argparse.Namespace) -> int:
    from ugt_ensemble.deploy.k8s import write_manifests
    from ugt_ensemble.deploy.monitoring import monitoring_files, served_models
    from ugt_ensemble.errors import RepositoryError

    if not args.model_repository.is_dir():
        raise RepositoryError(f"{args.model_repository}: no such repository (build one, or pass --model-repository)")
    models = served_models(args.model_repository)
    written = write_manifests(monitoring_files(models, _thresholds(args)), args.output_dir)
    print(f"Wrote the alert rules and the dashboard for {models.ensemble} ({', '.join(models.steps)}):")
    for path in written:
        print(f"  {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.deploy.k8s import manifest_context, read_repository, render_manifests, write_manifests
    from ugt_ensemble.deploy.k8s_check import check_manifests
    from ugt_ensemble.deploy.monitoring import monitoring_files, served_models

    if args.monitoring_only:
        return _monitoring_only(args)
    options = K8sOptions(**given(args, FLAGS, K8sOptions))
    facts = read_repository(args.model_repository, options)
    rendered = render_manifests(args.model_repository, options, facts, _thresholds(args))
    errors = [] if args.no_check else check_manifests(rendered)
    if errors:
        print(f"x the manifests fail the offline check ({len(errors)}):")
        for error in errors:
            print(f"  - {error}")
        return 1
    models = served_models(args.model_repository, facts.ensemble, facts.model_step)
    written = write_manifests(rendered, args.output_dir)
    written += write_manifests(monitoring_files(models, _thresholds(args)), args.output_dir)
    print(f"Wrote {len(written)} manifests for {facts.ensemble} ({facts.server}) to {args.output_dir}/:")
    for path in written:
        print(f"  {path}")
    print(f"  GPUs per pod: {facts.gpus}; /dev/shm: {facts.shm.quantity} ({facts.shm.describe()[-1]})")
    if facts.auto_kind_models and not facts.gpus:
        print(f"  note: {', '.join(facts.auto_kind_models)} use KIND_AUTO; give the pod a GPU with --gpus 1")
    checked = "skipped" if args.no_check else f"passed (Kubernetes {KUBERNETES_VERSION} schemas, CRDs structurally)"
    print(f"  offline check: {checked}")
    context = manifest_context(facts, options)
    print(f"Create the operator key's Secret once ({context['operator_key_secret']}; never commit its value):")
    print(f"  {context['secret_command']}")
    print(f"Apply with: kubectl apply -f {args.output_dir}  (or KServe: kubectl apply -f {args.output_dir}/kserve)")
    return 0
