"""`python -m ugt_ensemble k8s`: the manifests pass the offline schema check and carry the values that matter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from http_endpoint import JsonHandler, serving

from ugt_ensemble.cli import main
from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
from ugt_ensemble.deploy.k8s import liveness_command, render_manifests
from ugt_ensemble.deploy.k8s_check import check_manifests, load_documents
from ugt_ensemble.deploy.k8s_security import restriction_flags
from ugt_ensemble.deploy.options import NGC_IMAGE, K8sOptions
from ugt_ensemble.errors import ConfigError, RepositoryError
from ugt_ensemble.repository.writer import write_models

MIB = 1 << 20
ROW_44 = 5 * 8 + 4  # one position of the six encoder tensors: five INT64 and one FP32
#: The four rule tensors of a row: the base set (INT64), the level-1 mask (1024 BOOL), and two lists of (parent,
#: slot) INT64 pairs whose variable length counts as max_seq_length.
RULES = 8 + 1024 + 2 * 1024 * 2 * 8
#: The bundle preprocess sends the Python-backend model step: those ten arrays, a header of 8 * (2 + 4 * 10) bytes
#: and up to 7 bytes of padding each.
BUNDLE_ROW = 1024 * ROW_44 + RULES + 8 * (2 + 4 * 10) + 7 * 10


def repository(root: Path, catalog, target: str = "cpu-wheel", engine: str | None = None, **triton) -> Path:
    """The configs and files of a build (the model file is a placeholder: no export needed here)."""
    export, base = target_server_settings(target, engine)
    config = BuildConfig(export=ExportConfig(**export), triton=base.with_changes(**triton))
    write_models(root, config, catalog.index())
    model_file = "model.plan" if config.triton.platform == "tensorrt_plan" else "model.onnx"
    (root / "ugt_trt" / "1" / model_file).write_bytes(b"placeholder")
    return root


def documents(root: Path, **options) -> dict:
    rendered = render_manifests(root, K8sOptions(**options))
    assert check_manifests(rendered) == []
    return load_documents(rendered)


def container(docs: dict) -> dict:
    (only,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def volumes(pod_spec: dict) -> dict:
    return {v["name"]: v for v in pod_spec["volumes"]}


def test_cpu_build_manifests(tmp_path, catalog):
    docs = documents(repository(tmp_path, catalog))
    c = container(docs)
    assert c["image"] == "ugt-ensemble-cpu:0.2.0" and c["command"][:4] == ["python", "-m", "ugt_ensemble", "serve"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["exec"]["command"] == liveness_command("ugt_recommend", 8000)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert volumes(pod)["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    assert volumes(pod)["model-repository"]["persistentVolumeClaim"]["claimName"] == "ugt-ensemble-repository"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["dshm"]["mountPath"] == "/dev/shm" and mounts["model-repository"]["readOnly"] is True
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in docs["Service"]["spec"]["ports"]}
    assert ports == {"grpc": (8001, "grpc"), "http": (8000, "http")}
    assert docs["ServiceMonitor"]["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    predictor = docs["InferenceService"]["spec"]["predictor"]
    assert "model" not in predictor and predictor["containers"][0]["image"] == "ugt-ensemble-cpu:0.2.0"


def test_the_autoscaler_scales_on_model_step_queue_time_with_cpu_as_fallback(tmp_path, catalog):
    hpa = documents(repository(tmp_path, catalog))["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ugt-recommend"}
    triton, cpu = hpa["metrics"]
    selector = {"matchLabels": {"model": "ugt_trt"}}
    assert triton["pods"]["metric"] == {"name": "nv_inference_queue_us_per_request", "selector": selector}
    assert triton["pods"]["target"] == {"type": "AverageValue", "averageValue": "3000"}
    assert cpu["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 8)


def test_the_pending_signal_targets_one_full_batch_per_instance(tmp_path, catalog):
    root = repository(tmp_path, catalog, "ngc", "onnxruntime-backend", instance_count=3)
    metric = documents(root, hpa_metric="pending")["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]
    assert metric["metric"]["name"] == "nv_inference_pending_request_count"
    assert metric["target"]["averageValue"] == str(3 * 64)


@pytest.mark.parametrize(("gpus", "requested"), [((0,), 1), ((0, 1), 2)])
def test_tensorrt_builds_request_their_gpus_on_the_stock_image(tmp_path, catalog, gpus, requested):
    docs = documents(repository(tmp_path, catalog, "ngc", "tensorrt", gpus=gpus))
    c = container(docs)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == requested == c["resources"]["requests"]["nvidia.com/gpu"]
    assert c["image"] == NGC_IMAGE and c["command"][:2] == ["tritonserver", "--model-repository=/models"]
    model = docs["InferenceService"]["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["storageUri"] == "pvc://ugt-ensemble-repository/"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == requested
    assert model["livenessProbe"]["exec"]["command"] == liveness_command("ugt_recommend", 8080)


def test_kind_auto_steps_get_a_gpu_only_when_asked(tmp_path, catalog):
    root = repository(tmp_path, catalog, "ngc", "onnxruntime-backend")
    assert "nvidia.com/gpu" not in container(documents(root))["resources"]["limits"]
    assert container(documents(root, gpus=1))["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_shm_is_sized_from_instances_batch_lengths_and_tensors(tmp_path, catalog):
    root = repository(tmp_path, catalog, preprocess_instances=4)
    history = 1 * MIB + 4  # the largest HISTORY document preprocess accepts, with its length prefix
    preprocess = 4 * (MIB + 64 * (history + BUNDLE_ROW))
    step = 1 * (MIB + 64 * (BUNDLE_ROW + 50 * 3 * 8 + 50 * 4))  # the bundle, or the same arrays one by one
    postprocess = 1 * (MIB + 64 * ((50 * 3 * 8 + 50 * 4 + RULES) + (50 * 8 + 50 * 4 + 50 * 3 * 8)))  # -> ids
    need = preprocess + step + postprocess
    expected = -(-need * 2 // (64 * MIB)) * 64  # x2 headroom, rounded up to 64 MiB
    assert expected == 640
    pod = documents(root)["Deployment"]["spec"]["template"]["spec"]
    assert volumes(pod)["dshm"]["emptyDir"]["sizeLimit"] == f"{expected}Mi"


def test_small_repositories_get_the_floor(tmp_path, catalog):
    root = repository(tmp_path, catalog, max_request_bytes=4096)
    pod = documents(root)["Deployment"]["spec"]["template"]["spec"]
    assert volumes(pod)["dshm"]["emptyDir"]["sizeLimit"] == "256Mi"


def test_object_storage_is_read_by_tritonserver(tmp_path, catalog):
    root = repository(tmp_path, catalog, "ngc", "onnxruntime-backend")
    docs = documents(root, repository_source="s3://models/ugt", storage_secret="s3-credentials", namespace="reco")
    c = container(docs)
    assert "--model-repository=s3://models/ugt" in c["command"]
    assert c["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert "model-repository" not in volumes(docs["Deployment"]["spec"]["template"]["spec"])
    assert docs["InferenceService"]["spec"]["predictor"]["model"]["storageUri"] == "s3://models/ugt"
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"reco"}


def test_impossible_deployments_fail_in_one_line(tmp_path, catalog):
    root = repository(tmp_path, catalog)
    with pytest.raises(RepositoryError, match="does not load on ngc: ugt_trt/1: imports onnxruntime"):
        render_manifests(root, K8sOptions(server="ngc"))
    with pytest.raises(ConfigError, match="use --server ngc"):
        render_manifests(root, K8sOptions(repository_source="gs://bucket/ugt"))
    with pytest.raises(ConfigError, match="raise --memory"):
        render_manifests(root, K8sOptions(memory="1Gi"))
    for bad in (dict(repository_source="nfs:/x"), dict(name="Bad_Name"), dict(min_replicas=3, max_replicas=2)):
        with pytest.raises(ConfigError):
            K8sOptions(**bad)


def test_the_offline_check_finds_broken_manifests(tmp_path, catalog):
    rendered = render_manifests(repository(tmp_path, catalog), K8sOptions())
    broken = dict(rendered)
    broken["deployment.yaml"] = rendered["deployment.yaml"].replace(
        "terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30"
    )
    broken["hpa.yaml"] = rendered["hpa.yaml"].replace("averageUtilization: 80", "averageUtilization: high")
    broken["servicemonitor.yaml"] = rendered["servicemonitor.yaml"].replace("interval: 15s", "interval: often")
    kserve = rendered["kserve/inferenceservice.yaml"]
    broken["kserve/inferenceservice.yaml"] = kserve.replace("{name: dshm, mountPath", "{name: shm, mountPath")
    errors = check_manifests(broken)
    assert any(e.startswith("Deployment:") and "terminationGracePeriodSecond" in e for e in errors), errors
    assert any(e.startswith("HorizontalPodAutoscaler:") for e in errors), errors
    assert any("interval 'often'" in e for e in errors), errors
    assert "InferenceService: volumeMount shm names no volume" in errors
    service = yaml.safe_load(rendered["service.yaml"])
    service["spec"]["ports"][0]["targetPort"] = "grcp"
    assert any("targetPort grcp" in e for e in check_manifests({**rendered, "service.yaml": yaml.safe_dump(service)}))


class _Triton(JsonHandler):
    """Answers like tritonserver's HTTP endpoint: 200 with outputs, or 400 like a dead stub's error."""

    healthy = True
    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.body()))
        dead = (400, {"error": "Stub process 'preprocess_0_0' is not healthy."})
        self.answer(*((200, {"outputs": [{"name": "ITEM_IDS"}]}) if self.healthy else dead))


def test_the_liveness_probe_runs_a_real_inference():
    with serving(_Triton) as port:
        command = liveness_command("ugt_recommend", port)
        try:
            assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
            _Triton.healthy = False
            assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0
        finally:
            _Triton.healthy = True
    path, body = _Triton.seen[0]
    assert path == "/v2/models/ugt_recommend/infer"
    assert body == {  # marked as a probe: the steps count it apart from user traffic
        "parameters": {"ugt_probe": True},
        "inputs": [{"name": "HISTORY", "shape": [1, 1], "datatype": "BYTES", "data": ["[]"]}],
    }


def test_the_command_writes_checked_manifests(tmp_path, catalog, capsys):
    root = repository(tmp_path / "repo", catalog)
    out = tmp_path / "k8s"
    assert main(["k8s", "--model-repository", str(root), "--output-dir", str(out), "--max-replicas", "4"]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert files == [
        "deployment.yaml",
        "grafana-dashboard.yaml",
        "hpa.yaml",
        "kserve/inferenceservice.yaml",
        "metrics-service.yaml",
        "monitoring/alerts.yaml",
        "prometheusrule.yaml",
        "service.yaml",
        "servicemonitor.yaml",
    ]
    assert (out / "monitoring" / "dashboard.json").is_file()
    assert "maxReplicas: 4" in (out / "hpa.yaml").read_text()
    printed = capsys.readouterr().out
    assert "offline check: passed" in printed
    assert "kubectl create secret generic ugt-recommend-operator-key --from-literal=operator-key=" in printed
    assert "secrets.token_urlsafe(32)" in printed
    assert "kind: Secret" not in "".join(p.read_text() for p in out.rglob("*.yaml"))  # no secret in a file
    assert main(["k8s", "--model-repository", str(root), "--server", "ngc", "--output-dir", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_command_starts_without_torch_or_tritonclient():
    heavy = ("torch", "onnx", "tritonclient", "jinja2", "yaml")
    code = (
        "import sys\nfrom ugt_ensemble.cli import main\n"
        "try:\n    main(['k8s', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr[-1000:]


FLAGS = [
    "--http-restricted-api=model-repository,logging,trace,shared-memory:ugt-operator-key=$(UGT_OPERATOR_KEY)",
    "--grpc-restricted-protocol=model-repository,logging,trace,shared-memory:ugt-operator-key=$(UGT_OPERATOR_KEY)",
]


def predictor_container(docs: dict) -> dict:
    predictor = docs["InferenceService"]["spec"]["predictor"]
    return predictor["model"] if "model" in predictor else predictor["containers"][0]


def key_env(c: dict) -> dict:
    return {e["name"]: e.get("valueFrom", e.get("value")) for e in c["env"]}


def test_tritonserver_demands_the_operator_key_from_a_secret(tmp_path, catalog):
    assert list(restriction_flags()) == FLAGS
    ngc = documents(repository(tmp_path / "ngc", catalog, "ngc", "onnxruntime-backend"))
    assert container(ngc)["command"][0] == "tritonserver" and container(ngc)["command"][-2:] == FLAGS
    model = predictor_container(ngc)  # KServe appends `args` to its Triton runtime's tritonserver command
    assert model["args"] == FLAGS and "command" not in model
    cpu = documents(repository(tmp_path / "cpu", catalog), operator_key_secret="reco-key")
    assert container(cpu)["command"][:4] == ["python", "-m", "ugt_ensemble", "serve"]  # serve adds the flags
    for docs, secret in ((ngc, "ugt-recommend-operator-key"), (cpu, "reco-key")):
        for c in (container(docs), predictor_container(docs)):
            env = key_env(c)
            assert env["UGT_OPERATOR_KEY"] == {"secretKeyRef": {"name": secret, "key": "operator-key"}}
            assert env["UGT_STATE_DIR"] == "/run/ugt-ensemble"


def test_containers_run_read_only_with_runtime_default_seccomp_and_a_cpu_limit(tmp_path, catalog):
    for target, engine in (("cpu-wheel", None), ("ngc", "onnxruntime-backend")):
        docs = documents(repository(tmp_path / target, catalog, target, engine), cpu="1500m", cpu_limit="3")
        pods = [docs["Deployment"]["spec"]["template"]["spec"], docs["InferenceService"]["spec"]["predictor"]]
        for pod, c in zip(pods, (container(docs), predictor_container(docs))):
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["limits"]["cpu"] == "3" and c["resources"]["requests"]["cpu"] == "1500m"
            writable = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert {"/tmp", "/dev/shm", "/run/ugt-ensemble"} <= writable.keys()
            assert all("emptyDir" in volumes(pod)[writable[p]] for p in ("/tmp", "/dev/shm", "/run/ugt-ensemble"))
    limits = container(documents(repository(tmp_path / "default", catalog)))["resources"]["limits"]
    assert limits["cpu"] == "2"  # the request: never more than the pod asked for
    with pytest.raises(ConfigError, match="cpu limit 1 is below the request 2"):
        K8sOptions(cpu_limit="1")
    with pytest.raises(ConfigError, match="cpu 'two'"):
        K8sOptions(cpu="two")


def test_metrics_have_their_own_service_that_only_the_service_monitor_selects(tmp_path, catalog):
    docs = documents(repository(tmp_path, catalog))
    client, metrics = docs["Service"], docs["Service/ugt-recommend-metrics"]
    assert {p["name"] for p in client["spec"]["ports"]} == {"grpc", "http"}
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 8002, "targetPort": "metrics"}]
    assert metrics["spec"]["clusterIP"] == "None"
    selector = docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items()
    assert selector <= metrics["metadata"]["labels"].items() and not selector <= client["metadata"]["labels"].items()


def test_the_offline_check_finds_insecure_manifests(tmp_path, catalog):
    rendered = render_manifests(repository(tmp_path, catalog, "ngc", "onnxruntime-backend"), K8sOptions())
    docs = load_documents(rendered)
    deployment = docs["Deployment"]
    c = container(docs)
    c["securityContext"]["readOnlyRootFilesystem"] = False
    del c["securityContext"]["seccompProfile"]
    del deployment["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    del c["resources"]["limits"]["cpu"]
    c["env"][0] = {"name": "UGT_OPERATOR_KEY", "value": "written-into-the-manifest"}
    c["command"] = c["command"][:-2]
    service = docs["Service"]
    service["spec"]["ports"].append({"name": "metrics", "port": 8002, "targetPort": "metrics"})
    model = predictor_container(docs)
    model["args"] = []
    broken = {
        **rendered,
        "deployment.yaml": yaml.safe_dump(deployment),
        "service.yaml": yaml.safe_dump(service),
        "kserve/inferenceservice.yaml": yaml.safe_dump(docs["InferenceService"]),
    }
    errors = check_manifests(broken)
    where = "Deployment: container tritonserver: "
    for finding in (
        "securityContext.readOnlyRootFilesystem must be true",
        "seccompProfile RuntimeDefault is missing (pod or container securityContext)",
        "resources.limits.cpu is missing",
        "env UGT_OPERATOR_KEY must come from a Secret (valueFrom.secretKeyRef)",
        "tritonserver runs without the operator key's restriction flags",
    ):
        assert where + finding in errors, errors
    kserve = "InferenceService: container kserve-container: "
    assert kserve + "tritonserver runs without the operator key's restriction flags" in errors
    assert "Service ugt-recommend: exposes metrics beside the client ports" in errors
    assert len(errors) == 7, errors
