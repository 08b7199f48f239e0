"""`python -m ugt_ensemble build`: export the model and emit the Triton repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.build import BUILD_STEPS, build_repository
from ugt_ensemble.config import ENGINES, BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.progress import StepProgress


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "build", parents=parents, help="export the model and write the Triton model repository", description=__doc__
    )
    p.add_argument(
        "--output-dir", type=Path, default=Path("ensemble"), help="model repository to write (default: ensemble)"
    )
    src = p.add_argument_group("model and catalog")
    src.add_argument(
        "--catalog", type=Path, help="catalog CSV/Parquet with columns item_id,l1,l2,l3 (default: synthetic)"
    )
    src.add_argument(
        "--synthetic-items", type=int, default=10_000, help="size of the synthetic catalog (default: 10000)"
    )
    src.add_argument("--checkpoint", type=Path, help="state dict to load (torch.load(weights_only=True))")
    src.add_argument(
        "--model-config", type=Path, help="model config JSON (UGTConfig fields); default: the checkpoint's, or built-in"
    )
    src.add_argument("--seed", type=int, default=0, help="seed of the initialisation and synthetic data (default: 0)")
    exp = p.add_argument_group("export")
    exp.add_argument(
        "--engine", choices=ENGINES, default="onnxruntime", help="model-step engine (default: onnxruntime)"
    )
    exp.add_argument("--max-batch-size", type=int, default=64, help="max batch (export range and Triton; default: 64)")
    exp.add_argument(
        "--max-seq-length", type=int, default=1024, help="longest history the model step takes (default: 1024)"
    )
    exp.add_argument(
        "--score-atol", type=float, default=1e-4, help="allowed |score| difference ONNX vs PyTorch (default: 1e-4)"
    )
    tri = p.add_argument_group("triton")
    tri.add_argument(
        "--ensemble-name", default="ugt_recommend", help="name of the ensemble model (default: ugt_recommend)"
    )
    tri.add_argument("--exclude-history", action="store_true", help="drop items already in the user's history")
    tri.add_argument(
        "--naive-peer",
        action="store_true",
        help="also emit ugt_naive, the benchmark's naive baseline (PyTorch eager, per request)",
    )
    tri.add_argument("--max-queue-delay-us", type=int, default=0, help="dynamic batcher queue delay (default: 0)")
    tri.add_argument("--preferred-batch-sizes", type=_int_list, default=(), help="e.g. 8,16,32 (model step)")
    tri.add_argument("--model-instances", type=int, default=1, help="model-step instances (default: 1)")
    tri.add_argument("--intra-op-threads", type=int, default=2, help="ONNX Runtime threads per instance (default: 2)")
    tri.add_argument(
        "--length-buckets", type=_int_list, default=None, help="padded history lengths, e.g. 16,64,256,1024"
    )
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Map the flags into one `BuildConfig` (the only place that does)."""
    triton = dict(
        ensemble_name=args.ensemble_name,
        max_batch_size=args.max_batch_size,
        exclude_history=args.exclude_history,
        naive_peer=args.naive_peer,
        max_queue_delay_us=args.max_queue_delay_us,
        preferred_batch_sizes=args.preferred_batch_sizes,
        model_instances=args.model_instances,
        intra_op_threads=args.intra_op_threads,
    )
    if args.length_buckets:
        triton["length_buckets"] = args.length_buckets
    return BuildConfig(
        output_dir=args.output_dir,
        model=UGTConfig.from_json_file(args.model_config) if args.model_config else None,
        export=ExportConfig(
            engine=args.engine,
            max_batch_size=args.max_batch_size,
            max_seq_length=args.max_seq_length,
            score_atol=args.score_atol,
        ),
        triton=TritonConfig(**triton),
        catalog_path=args.catalog,
        synthetic_items=args.synthetic_items,
        checkpoint=args.checkpoint,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = build_repository(config, StepProgress(BUILD_STEPS, enabled=not args.quiet))
    print(f"Wrote the Triton model repository {result.repository}:")
    for name, info in result.report.info["models"].items():
        batch = info["max_batch_size"]
        print(f"  {name + '/':<16} {info['backend']:<9} versions {info['versions']}, max_batch_size {batch}")
    print(f"  catalog: {len(result.catalog)} items ({result.catalog.source})")
    print(f"  files: {len(result.files)} written, e.g. {result.files[0]}")
    print(f"Serve it with: python -m ugt_ensemble serve --model-repository {config.output_dir}")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
