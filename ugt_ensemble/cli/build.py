"""`python -m ugt_ensemble build`: export the model and emit the Triton repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.build import build_repository, build_steps
from ugt_ensemble.cli.common import int_list
from ugt_ensemble.config import DEFAULT_TIMING_CACHE, ENGINES, PRECISIONS, BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.progress import StepProgress


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "build", parents=parents, description=__doc__, help="export the model and write the Triton model repository"
    )
    p.add_argument(
        "--output-dir", type=Path, default=Path("ensemble"), help="model repository to write (default: ensemble)"
    )
    _source_arguments(p.add_argument_group("model and catalog"))
    _export_arguments(p.add_argument_group("export"))
    _tensorrt_arguments(p.add_argument_group("TensorRT (--engine tensorrt)"))
    _triton_arguments(p.add_argument_group("Triton"))
    p.set_defaults(run=run)


def _source_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--catalog", type=Path, help="catalog CSV/Parquet with columns item_id,l1,l2,l3 (default: synthetic)"
    )
    g.add_argument("--synthetic-items", type=int, default=10_000, help="size of the synthetic catalog (default: 10000)")
    g.add_argument("--checkpoint", type=Path, help="state dict to load (torch.load(weights_only=True))")
    g.add_argument("--model-config", type=Path, help="model config JSON (UGTConfig fields); default: the checkpoint's")
    g.add_argument("--seed", type=int, default=0, help="seed of the initialisation and synthetic data (default: 0)")


def _export_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--engine", choices=ENGINES, default="onnxruntime", help="model-step engine (default: onnxruntime)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32", help="engine precision (default: fp32)")
    g.add_argument("--max-batch-size", type=int, default=64, help="max batch (export range and Triton; default: 64)")
    g.add_argument("--max-seq-length", type=int, default=1024, help="longest history the model step takes")
    g.add_argument("--score-atol", type=float, default=1e-4, help="allowed |score| difference ONNX vs PyTorch")
    g.add_argument("--onnx", type=Path, help="reuse this exported model.onnx instead of exporting (still validated)")


def _tensorrt_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--workspace-mib", type=int, default=4096, help="builder workspace limit (default: 4096)")
    g.add_argument("--timing-cache", type=Path, default=DEFAULT_TIMING_CACHE, help=f"default: {DEFAULT_TIMING_CACHE}")
    g.add_argument("--calibration-histories", type=Path, help="int8: one JSON history per line (default: synthetic)")
    g.add_argument("--calibration-batches", type=int, default=16, help="int8: calibration batches (default: 16)")


def _triton_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--ensemble-name", default="ugt_recommend", help="name of the ensemble (default: ugt_recommend)")
    g.add_argument("--exclude-history", action="store_true", help="drop items already in the user's history")
    g.add_argument(
        "--naive-peer",
        action="store_true",
        help="also emit ugt_naive, the benchmark's naive baseline (PyTorch eager, per request)",
    )
    g.add_argument("--max-queue-delay-us", type=int, default=0, help="dynamic batcher queue delay (default: 0)")
    g.add_argument("--preferred-batch-sizes", type=int_list, default=(), help="e.g. 8,16,32 (model step)")
    g.add_argument("--model-instances", type=int, default=1, help="model-step instances (default: 1)")
    g.add_argument(
        "--instance-kind",
        choices=("KIND_CPU", "KIND_GPU", "KIND_AUTO"),
        help="model-step instance kind (default: by engine)",
    )
    g.add_argument("--gpus", type=int_list, default=(), help="model-step GPUs, e.g. 0,1 (default: all)")
    g.add_argument("--intra-op-threads", type=int, default=2, help="ONNX Runtime threads per instance (default: 2)")
    g.add_argument("--length-buckets", type=int_list, default=None, help="padded history lengths, e.g. 16,64,1024")
    g.add_argument("--cuda-graphs", action="store_true", help="TensorRT plan: CUDA graphs")
    g.add_argument("--no-warmup", action="store_true", help="no model_warmup samples for the model step")
    g.add_argument("--response-cache", action="store_true", help="model step: response_cache (server --cache-config)")
    g.add_argument("--version-policy", default="latest:1", help="latest:N, all, or specific:1,2 (default: latest:1)")
    g.add_argument("--max-queue-size", type=int, default=0, help="each step's queue bound, 0: none (see README)")
    g.add_argument("--queue-timeout-us", type=int, default=0, help="each step's queue timeout, 0: none (see README)")
    g.add_argument("--max-batch-tokens", type=int, default=4096, help="model step: rows x length per ORT call")


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Map the flags into one `BuildConfig` (the only place that does)."""
    triton = dict(
        ensemble_name=args.ensemble_name, max_batch_size=args.max_batch_size, exclude_history=args.exclude_history,
        naive_peer=args.naive_peer, max_queue_delay_us=args.max_queue_delay_us,
        preferred_batch_sizes=args.preferred_batch_sizes, model_instances=args.model_instances,
        instance_kind=args.instance_kind, gpus=args.gpus, intra_op_threads=args.intra_op_threads,
        cuda_graphs=args.cuda_graphs, warmup=not args.no_warmup, response_cache=args.response_cache,
        version_policy=args.version_policy, max_queue_size=args.max_queue_size,
        queue_timeout_us=args.queue_timeout_us, max_batch_tokens=args.max_batch_tokens,
    )  # fmt: skip
    if args.length_buckets:
        triton["length_buckets"] = args.length_buckets
    export = ExportConfig(
        engine=args.engine, precision=args.precision, max_batch_size=args.max_batch_size,
        max_seq_length=args.max_seq_length, score_atol=args.score_atol, workspace_mib=args.workspace_mib,
        timing_cache=args.timing_cache, calibration_histories=args.calibration_histories,
        calibration_batches=args.calibration_batches,
    )  # fmt: skip
    return BuildConfig(
        output_dir=args.output_dir,
        model=UGTConfig.from_json_file(args.model_config) if args.model_config else None,
        export=export,
        triton=TritonConfig(**triton),
        catalog_path=args.catalog,
        synthetic_items=args.synthetic_items,
        checkpoint=args.checkpoint,
        onnx_path=args.onnx,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = build_repository(config, StepProgress(build_steps(config), enabled=not args.quiet))
    print(f"Wrote the Triton model repository {result.repository}:")
    for name, info in result.report.info["models"].items():
        batch = info["max_batch_size"]
        print(f"  {name + '/':<16} {info['backend']:<16} versions {info['versions']}, max_batch_size {batch}")
    print(f"  catalog: {len(result.catalog)} items ({result.catalog.source})")
    print(f"  files: {len(result.files)} written, e.g. {result.files[0]}")
    print(f"Serve it with: python -m ugt_ensemble serve --model-repository {config.output_dir}")
    return 0
