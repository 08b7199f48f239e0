"""Check a model repository offline: every config parses into Triton's ModelConfig proto, the
ensemble obeys Triton's rules, and every model has its files.

Parsing catches misspelt fields and enums; the ensemble rules (which parsing cannot see) are:
composing models exist and batch at least as much as the ensemble; the ensemble has no
instance_group / optimization / model_warmup / batching of its own; every step maps existing
tensors; each ensemble tensor is produced once, consumed, and has one dtype and shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.runtime.contract import ONNX_FILE, PLAN_FILE

#: The file a version directory needs, by backend / platform.
MODEL_FILES = {
    "python": "model.py",
    "onnxruntime_onnx": ONNX_FILE,
    "onnxruntime": ONNX_FILE,
    "tensorrt_plan": PLAN_FILE,
    "tensorrt": PLAN_FILE,
    "pytorch_libtorch": "model.pt",
}


@dataclass
class RepositoryReport:
    """`errors` empty means the repository passed; `info` describes what was found."""

    errors: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    configs: dict[str, mc.ModelConfig] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def parse_config(text: str, source: str) -> mc.ModelConfig:
    """Parse config.pbtxt text; raises RepositoryError naming `source` and the parser's complaint."""
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as exc:
        raise RepositoryError(f"{source}: {exc}") from None


def read_config(path: Path) -> mc.ModelConfig:
    """Read and parse a config.pbtxt; RepositoryError naming the file if it is unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryError(f"{path}: cannot read ({exc})") from None
    return parse_config(text, str(path))


def string_parameters(config: mc.ModelConfig) -> dict[str, str]:
    """A config's `parameters` as plain strings (what `StepParameters.from_config` reads)."""
    return {key: value.string_value for key, value in config.parameters.items()}


def check_repository(root: str | Path) -> RepositoryReport:
    """Parse and check every model under `root` (a directory per model)."""
    root = Path(root)
    report = RepositoryReport(info={"repository": str(root), "models": {}})
    if not root.is_dir():
        report.errors.append(f"{root}: not a directory")
        return report
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        _load_model(model_dir, report)
    for config in report.configs.values():
        if config.platform == "ensemble":
            report.errors.extend(check_ensemble(config, report.configs))
    if not report.configs:
        report.errors.append(f"{root}: no model directories with a config.pbtxt")
    return report


def _load_model(model_dir: Path, report: RepositoryReport) -> None:
    config_path = model_dir / "config.pbtxt"
    if not config_path.is_file():
        report.errors.append(f"{model_dir.name}: no config.pbtxt")
        return
    try:
        config = read_config(config_path)
    except RepositoryError as exc:
        report.errors.append(str(exc))
        return
    if config.name and config.name != model_dir.name:
        report.errors.append(f"{config_path}: name {config.name!r} differs from its directory {model_dir.name!r}")
    report.configs[model_dir.name] = config
    versions = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    report.info["models"][model_dir.name] = {
        "backend": config.backend or config.platform,
        "versions": versions,
        "max_batch_size": config.max_batch_size,
    }
    report.errors.extend(_check_files(model_dir, config, versions))


def _check_files(model_dir: Path, config: mc.ModelConfig, versions: list[int]) -> list[str]:
    if not versions:
        return [f"{model_dir.name}: no version directory (e.g. {model_dir.name}/1/)"]
    if config.platform == "ensemble":
        return []
    wanted = config.default_model_filename or MODEL_FILES.get(config.backend or config.platform)
    if wanted is None:
        return []
    return [f"{model_dir.name}/{v}: missing {wanted}" for v in versions if not (model_dir / str(v) / wanted).exists()]


def check_ensemble(ensemble: mc.ModelConfig, configs: dict[str, mc.ModelConfig]) -> list[str]:
    """Triton's ensemble rules for one ensemble config (see the module docstring)."""
    name = ensemble.name
    errors = [
        f"{name}: ensemble must not set {f}"
        for f in ("instance_group", "optimization", "model_warmup", "dynamic_batching", "sequence_batching")
        if _is_set(ensemble, f)
    ]
    produced = {t.name: [("ensemble input", t.data_type, tuple(t.dims))] for t in ensemble.input}
    consumed = {t.name: [("ensemble output", t.data_type, tuple(t.dims))] for t in ensemble.output}
    if not ensemble.ensemble_scheduling.step:
        errors.append(f"{name}: ensemble_scheduling has no step")
    for step in ensemble.ensemble_scheduling.step:
        model = configs.get(step.model_name)
        if model is None:
            errors.append(f"{name}: step model {step.model_name!r} is not in the repository")
            continue
        errors.extend(_check_step(name, ensemble, step, model, produced, consumed))
    errors.extend(_check_tensor_flow(name, produced, consumed))
    return errors


def _check_step(name, ensemble, step, model, produced, consumed) -> list[str]:  # noqa: ANN001
    errors = []
    if ensemble.max_batch_size > 0 and model.max_batch_size < ensemble.max_batch_size:
        errors.append(
            f"{name}: step {model.name!r} has max_batch_size {model.max_batch_size} "
            f"< the ensemble's {ensemble.max_batch_size}"
        )
    model_inputs = {t.name: t for t in model.input}
    errors += _map_tensors(name, model.name, "input", step.input_map, model_inputs, consumed)
    errors += _map_tensors(name, model.name, "output", step.output_map, {t.name: t for t in model.output}, produced)
    unmapped = sorted(set(model_inputs) - set(step.input_map) - {t.name for t in model.input if t.optional})
    if unmapped:
        errors.append(f"{name}: step {model.name!r} leaves input(s) {unmapped} unmapped")
    return errors


def _map_tensors(ensemble: str, model: str, kind: str, mapping, tensors: dict, ends: dict) -> list[str]:  # noqa: ANN001
    """Record each mapped model tensor as an end (producer or consumer) of its ensemble tensor."""
    errors = []
    for key, value in mapping.items():
        if key not in tensors:
            errors.append(f"{ensemble}: step {model!r} has no {kind} {key!r}")
            continue
        t = tensors[key]
        ends.setdefault(value, []).append((f"{model}.{key}", t.data_type, tuple(t.dims)))
    return errors


def _check_tensor_flow(name: str, produced: dict, consumed: dict) -> list[str]:
    errors = []
    for tensor in sorted(set(produced) | set(consumed)):
        makers, users = produced.get(tensor, []), consumed.get(tensor, [])
        if not makers:
            errors.append(f"{name}: tensor {tensor!r} is consumed by {[u[0] for u in users]} but never produced")
        elif len(makers) > 1:
            errors.append(f"{name}: tensor {tensor!r} is produced more than once: {[m[0] for m in makers]}")
        if makers and not users:
            errors.append(f"{name}: tensor {tensor!r} from {makers[0][0]} is never consumed")
        for end in makers + users:
            if makers and not _compatible(makers[0], end):
                errors.append(f"{name}: tensor {tensor!r} is {_describe(makers[0])} but {_describe(end)}")
    return errors


def _compatible(a: tuple, b: tuple) -> bool:
    (_, type_a, dims_a), (_, type_b, dims_b) = a, b
    if type_a != type_b or len(dims_a) != len(dims_b):
        return False
    return all(x == y or -1 in (x, y) for x, y in zip(dims_a, dims_b))


def _describe(end: tuple) -> str:
    where, data_type, dims = end
    return f"{mc.DataType.Name(data_type)} {list(dims)} at {where}"


def _is_set(config: mc.ModelConfig, field_name: str) -> bool:
    value = getattr(config, field_name)
    return config.HasField(field_name) if hasattr(value, "ListFields") else len(value) > 0
