"""`python -m ugt_ensemble build`: export the model step and emit the Triton repository."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ugt_ensemble.cli.common import int_list
from ugt_ensemble.cli.flags import Flag, given
from ugt_ensemble.cli.item_set_flags import add_item_set_flags, item_set_changes
from ugt_ensemble.config import (
    ENGINES,
    PLATFORMS,
    PRECISIONS,
    TARGET_SERVERS,
    BuildConfig,
    ExportConfig,
    ModelStepConfig,
    PostprocessConfig,
    PreprocessConfig,
    QueuePolicy,
    TritonConfig,
    UGTConfig,
    resolve_target_server,
    target_server_settings,
)
from ugt_ensemble.config.steps import STEP_CONFIGS

BY_TARGET = "by --target-server"
SOURCE = [
    Flag("--catalog", ExportConfig, "catalog_path", "catalog CSV/Parquet with columns item_id,l1,l2,l3", Path,
         default_text="the model's own, else synthetic"),
    Flag("--synthetic-items", BuildConfig, "synthetic_items", "size of the synthetic catalog", int),
    Flag("--model", BuildConfig, "model_file", "your model step: a torch.export archive (.pt2)", Path),
    Flag("--onnx", BuildConfig, "onnx_path", "an ONNX model step: served as it is, or checked against --model", Path),
    Flag("--checkpoint", BuildConfig, "checkpoint", "reference UGT weights (torch.load(weights_only=True))", Path),
    Flag("--model-config", BuildConfig, "model_config", "reference UGT architecture (JSON of UGTConfig fields)",
         Path, metavar="FILE.json", default_text="the checkpoint's, else the defaults"),
    Flag("--seed", BuildConfig, "seed", "seed of the initialisation and of synthetic data", int),
    Flag("--num-recommendations", ExportConfig, "num_recommendations", "items per answer (K)", int),
    Flag("--codebook-sizes", ExportConfig, "codebook_sizes", "the three semantic-ID vocabularies", int_list),
]  # fmt: skip
EXPORT = [
    Flag("--engine", TritonConfig, "platform", "model-step engine", str, choices=[*ENGINES, *PLATFORMS],
         default_text=f"{BY_TARGET}: onnxruntime on cpu-wheel; tensorrt on ngc where TensorRT is installed, "
         "else onnxruntime-backend"),
    Flag("--precision", ExportConfig, "precision", "engine precision", str, choices=PRECISIONS,
         default_text="fp16 for tensorrt, else fp32"),
    Flag("--max-batch-size", ExportConfig, "max_batch_size", "largest batch (export range and Triton)", int),
    Flag("--max-seq-length", ExportConfig, "max_seq_length", "longest history the model step takes", int),
    Flag(
        "--opset-version",
        ExportConfig,
        "opset_version",
        "ONNX opset asked of the exporter; builds for ONNX Runtime engines ask 20 (its Gelu op)",
        int,
    ),
    Flag("--score-atol", ExportConfig, "score_atol", "allowed |score| difference ONNX vs PyTorch", float),
    Flag("--min-catalog-validity", ExportConfig, "min_catalog_validity",
         "fail when a smaller share of returned triples are catalog items (0-1)", float),
]  # fmt: skip
TENSORRT = [
    Flag("--workspace-size-gb", ExportConfig, "workspace_size_gb", "builder workspace limit", float),
    Flag("--timing-cache", ExportConfig, "timing_cache", "timing cache reused by every build", Path),
    Flag("--calibration-histories", ExportConfig, "calibration_histories", "int8: one JSON history per line", Path),
    Flag("--calibration-batches", ExportConfig, "calibration_batches", "int8: calibration batches", int),
]
TRITON = [
    Flag("--ensemble-name", ExportConfig, "model_name", "name of the ensemble clients call", str),
    Flag("--exclude-history", PostprocessConfig, "exclude_history", "drop items already in the user's history",
         action="store_true"),
    Flag("--naive-peer", TritonConfig, "naive_peer",
         "also emit ugt_naive, the benchmark's naive baseline (from the development package, dev/)",
         action="store_true"),
    Flag("--instance-count", TritonConfig, "instance_count", "model-step instances (per GPU)", int,
         default_text=f"{BY_TARGET}: 1 on cpu-wheel, 2 on ngc"),
    Flag("--max-queue-delay-us", TritonConfig, "max_queue_delay_us", "model-step dynamic batcher delay", int,
         default_text=f"{BY_TARGET}: 0 on cpu-wheel, 100 on ngc"),
    Flag("--preferred-batch-sizes", TritonConfig, "preferred_batch_sizes", "model-step preferred batches",
         int_list, default_text=f"{BY_TARGET}: none on cpu-wheel, 8,16,32,64 on ngc"),
    Flag("--instance-kind", TritonConfig, "instance_kind", "model-step instance kind", str,
         choices=("KIND_CPU", "KIND_GPU", "KIND_AUTO"), default_text=BY_TARGET),
    Flag("--gpus", TritonConfig, "gpus", "model-step GPUs, e.g. 0,1", int_list, default_text=BY_TARGET),
    Flag("--intra-op-threads", ModelStepConfig, "intra_op_threads", "ONNX Runtime threads per instance", int),
    Flag("--length-buckets", PreprocessConfig, "length_buckets", "padded history lengths, e.g. 16,64,1024", int_list),
    Flag("--max-queue-size", QueuePolicy, "max_queue_size", "each step's queue bound, 0: none (see README)", int),
    Flag("--queue-timeout-us", QueuePolicy, "queue_timeout_us", "each step's queue timeout, 0: none", int),
    Flag("--max-batch-tokens", ModelStepConfig, "max_batch_tokens", "model step: rows x length per ORT call", int),
    Flag("--max-rule-entries", ModelStepConfig, "max_rule_entries", "model step: rows x rule-list width per ORT call",
         int),
    Flag("--no-dynamic-batching", TritonConfig, "enable_dynamic_batching", "no dynamic batching",
         action="store_false"),
    Flag("--cuda-graphs", ModelStepConfig, "cuda_graphs", "TensorRT plan: CUDA graphs", action="store_true"),
    Flag("--no-warmup", ModelStepConfig, "warmup", "no model-step warm-up (Python step: in initialize; native: "
         "Triton model_warmup samples)", action="store_false"),
    Flag("--response-cache", ModelStepConfig, "response_cache", "model step: response_cache (server --cache-config)",
         action="store_true"),
    Flag("--version-policy", ModelStepConfig, "version_policy", "latest:N, all, or specific:1,2", str),
]  # fmt: skip
FLAGS = SOURCE + EXPORT + TENSORRT + TRITON


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "build", parents=parents, description=__doc__, help="export the model step and write the Triton repository"
    )
    p.add_argument(
        "--output-dir", type=Path, default=Path("ensemble"), help="model repository to write (default: ensemble)"
    )
    p.add_argument(
        "--target-server",
        choices=("auto", *TARGET_SERVERS),
        default="auto",
        help="the tritonserver it is for: cpu-wheel (the nvidia-pytriton CPU build) or ngc (NVIDIA's container); "
        "auto: the one --engine needs, else ngc where TensorRT is installed, else cpu-wheel (default: auto)",
    )
    for title, flags in (("model and catalog", SOURCE), ("export", EXPORT), ("TensorRT", TENSORRT), ("Triton", TRITON)):
        group = p.add_argument_group(title)
        for flag in flags:
            flag.add_to(group)
        if flags is SOURCE:
            add_item_set_flags(group)
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Map the flags into one `BuildConfig` (the only place that does)."""
    triton_flags = given(args, FLAGS, TritonConfig)
    engine = triton_flags.pop("platform", None)
    target = resolve_target_server(args.target_server, engine)
    export_defaults, triton = target_server_settings(target, engine)
    build = given(args, FLAGS, BuildConfig)
    if "model_config" in build:
        build["model_config"] = UGTConfig.from_json_file(build["model_config"])
    return BuildConfig(
        output_dir=args.output_dir,
        export=ExportConfig(**{**export_defaults, **given(args, FLAGS, ExportConfig), **item_set_changes(args)}),
        triton=triton.with_changes(**triton_flags, **step_changes(args, triton)),
        target_server=target,
        **build,
    )


def step_changes(args: argparse.Namespace, triton: TritonConfig) -> dict[str, Any]:
    """The step configs of `triton` that the flags change: each with its own flags, and the queue flags
    (`QueuePolicy`) applied to every step."""
    queue = given(args, FLAGS, QueuePolicy)
    changes = {}
    for attribute, owner in STEP_CONFIGS.items():
        step, own = getattr(triton, attribute), given(args, FLAGS, owner)
        if own or queue:
            changes[attribute] = replace(step, **own, queue=replace(step.queue, **queue))
    return changes


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.build import build_repository
    from ugt_ensemble.progress import StepProgress

    config = config_from_args(args)
    result = build_repository(config, StepProgress(enabled=not args.quiet))
    print(f"Wrote the Triton model repository {result.repository} (for {config.target_server}):")
    for name, info in result.report.info["models"].items():
        batch = info["max_batch_size"]
        print(f"  {name + '/':<16} {info['backend']:<16} versions {info['versions']}, max_batch_size {batch}")
    prepared = result.prepared
    print(f"  model step: {prepared.step.source}")
    print(f"  catalog: {len(result.catalog)} items ({result.catalog.source})")
    if prepared.validity is not None:
        print(f"  catalog validity: {prepared.validity.describe()}")
    print(f"  files: {len(result.files)} written, e.g. {result.repository / config.export.model_name / 'config.pbtxt'}")
    if result.tool_files:
        print(f"  perf_analyzer input data: {', '.join(str(f) for f in result.tool_files)}")
    print(f"Serve it with: python -m ugt_ensemble serve --model-repository {config.output_dir}")
    return 0
