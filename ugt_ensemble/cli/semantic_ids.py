"""`python -m ugt_ensemble semantic-ids`: a catalog (item_id,l1,l2,l3) from item embeddings by residual k-means.

Reads Parquet, CSV, NPY or NPZ embeddings; writes the catalog (CSV or Parquet by the suffix of --output), its
codebooks (OUTPUT-stem.codebooks.npz) and a report (OUTPUT-stem.report.json). With --existing, items already in
that catalog keep their codes and only new items are encoded, with the catalog's saved codebooks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.cli.common import int_list


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser("semantic-ids", parents=parents, help="catalog codes from item embeddings",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("embeddings", type=Path, metavar="FILE", help="item embeddings: .parquet/.pq, .csv, .npy or .npz")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="the catalog to write (.csv, .parquet or .pq)"
    )
    source = p.add_argument_group("embeddings layout")
    source.add_argument(
        "--vector-column", metavar="NAME", help="the list column holding each vector (default: the only one)"
    )
    source.add_argument(
        "--vector-prefix", metavar="PREFIX", help="numbered vector columns PREFIX0..PREFIXN (default: e)"
    )
    source.add_argument(
        "--item-ids", type=Path, metavar="FILE", help=".npy input: item ids (.npy or one per line; default 0..N-1)"
    )
    codes = p.add_argument_group("codes")
    codes.add_argument("--codebook-sizes", type=int_list, default="1024,4096,16384", metavar="N,N,N",
                       help="the three vocabularies (default: %(default)s)")  # fmt: skip
    codes.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the samples and k-means (default: %(default)s)"
    )
    codes.add_argument(
        "--iterations", type=int, default=20, metavar="N", help="k-means iterations per level (default: %(default)s)"
    )
    codes.add_argument(
        "--points-per-centroid",
        type=int,
        default=256,
        metavar="N",
        help="training sample per level: this many points per centroid (default: %(default)s) ...",
    )
    codes.add_argument("--max-train-points", type=int, default=262_144, metavar="N",
                       help="... but at most this many (and at least K; default: %(default)s)")  # fmt: skip
    codes.add_argument("--threads", type=int, metavar="N", help="faiss threads (default: all cores)")
    extra = p.add_argument_group("columns and updates")
    extra.add_argument("--keep-columns", default="", metavar="NAMES",
                       help="comma-separated columns copied into the catalog (e.g. in_stock,category), from the "
                            "embeddings table or --attributes")  # fmt: skip
    extra.add_argument(
        "--attributes", type=Path, metavar="FILE", help="CSV/Parquet with item_id and the --keep-columns"
    )
    extra.add_argument("--existing", type=Path, metavar="FILE",
                       help="a catalog written by semantic-ids: its items keep their codes, new items are encoded "
                            "with its codebooks")  # fmt: skip
    extra.add_argument(
        "--codebooks", type=Path, metavar="FILE", help="the --existing catalog's codebooks (default: beside it)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.catalog.residual_kmeans import KMeansSettings
    from ugt_ensemble.catalog.semantic_id_job import SemanticIdJob, run_job, summary
    from ugt_ensemble.catalog.semantic_ids import SemanticIdSettings
    from ugt_ensemble.errors import ConfigError

    numbers = {"--iterations": args.iterations, "--points-per-centroid": args.points_per_centroid,
               "--max-train-points": args.max_train_points, "--threads": args.threads or 1}  # fmt: skip
    bad = [name for name, value in numbers.items() if value < 1]
    if bad:
        raise ConfigError(f"{', '.join(bad)} must be positive")
    kmeans = KMeansSettings(args.seed, args.iterations, args.points_per_centroid, args.max_train_points)
    job = SemanticIdJob(
        embeddings=args.embeddings,
        output=args.output,
        settings=SemanticIdSettings(tuple(args.codebook_sizes), kmeans),
        vector_column=args.vector_column,
        vector_prefix=args.vector_prefix,
        item_ids=args.item_ids,
        keep_columns=tuple(c.strip() for c in args.keep_columns.split(",") if c.strip()),
        attributes=args.attributes,
        existing=args.existing,
        codebooks=args.codebooks,
        threads=args.threads,
    )
    report = run_job(job, show_progress=not args.quiet)
    print(summary(report))
    return 0
