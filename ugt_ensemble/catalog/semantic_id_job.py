"""`semantic-ids` end to end: read embeddings, encode (or extend an existing catalog), write the catalog, its
codebooks and a report, and read the catalog back with the catalog reader that `build --catalog` uses."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ugt_ensemble.catalog.embeddings import PARQUET_SUFFIXES, load_embeddings
from ugt_ensemble.catalog.files import load_catalog
from ugt_ensemble.catalog.residual_kmeans import Codebooks, faiss_module
from ugt_ensemble.catalog.semantic_id_files import (
    check_output,
    codebooks_path,
    kept_columns,
    report_path,
    save_codebooks,
    write_catalog,
    write_report,
)
from ugt_ensemble.catalog.semantic_ids import SemanticIdSettings, assign_semantic_ids
from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.progress import StepProgress

LOGGER = logging.getLogger(__name__)
COLLISION_RULE = (
    "the item nearest the triple's reconstruction keeps it (existing items always keep theirs; ties: earlier row); "
    "each other item takes the nearest free l3 in its (l1, l2) prefix by level-2 residual distance (a two-level "
    "level 3: among the centroids of the 8 cells nearest the residual's, then all), else the next-nearest l2 under "
    "its l1, else the next-nearest l1"
)


@dataclass(frozen=True)
class SemanticIdJob:
    """What `python -m ugt_ensemble semantic-ids` was asked to do."""

    embeddings: Path
    output: Path
    settings: SemanticIdSettings = SemanticIdSettings()
    vector_column: str | None = None
    vector_prefix: str | None = None
    item_ids: Path | None = None
    keep_columns: tuple[str, ...] = ()
    attributes: Path | None = None
    existing: Path | None = None
    #: The existing catalog's codebooks (default: beside it).
    codebooks: Path | None = None
    threads: int | None = None

    def steps(self) -> int:
        return 7 + (self.existing is not None)


def run_job(job: SemanticIdJob, show_progress: bool = True, stream: TextIO | None = None) -> dict:
    """Do `job`; returns the report (also written beside the catalog)."""
    started = time.perf_counter()
    check_output(job.output, job.keep_columns)
    if job.codebooks is not None and job.existing is None:
        raise ConfigError("--codebooks names the codebooks of an --existing catalog; give --existing too")
    faiss = faiss_module()
    if job.threads:
        faiss.omp_set_num_threads(job.threads)
    progress = StepProgress(job.steps(), stream=stream, enabled=show_progress)
    with progress.step(f"Reading embeddings ({job.embeddings})"):
        embeddings = load_embeddings(job.embeddings, job.vector_column, job.vector_prefix, job.item_ids)
    existing = codebooks = None
    if job.existing is not None:
        with progress.step(f"Reading the existing catalog ({job.existing}) and its codebooks"):
            existing = load_catalog(job.existing, job.settings.codebook_sizes)
            codebooks = Codebooks.load(job.codebooks or codebooks_path(job.existing), job.settings.codebook_sizes,
                                       embeddings.dimension)  # fmt: skip
    result = assign_semantic_ids(embeddings, job.settings, progress, existing, codebooks)
    with progress.step(f"Writing {job.output} and its codebooks"):
        extra, without = kept_columns(_column_sources(job), job.keep_columns, result.item_ids)
        write_catalog(job.output, result.item_ids, result.codes, extra)
        save_codebooks(codebooks_path(job.output), result.codebooks.save)
    with progress.step("Reading the catalog back with the catalog reader of `build --catalog`"):
        load_catalog(job.output, job.settings.codebook_sizes)
    report = _report(job, result.report, without, time.perf_counter() - started)
    write_report(report_path(job.output), report)
    return report


def _column_sources(job: SemanticIdJob) -> list[Path]:
    """Where kept columns come from: --attributes or the embeddings table; then the existing catalog."""
    if not job.keep_columns:
        return []
    if job.attributes is None and job.embeddings.suffix.lower() not in (".csv", *PARQUET_SUFFIXES):
        raise ConfigError(f"--keep-columns needs --attributes FILE: {job.embeddings} is not a CSV or Parquet table")
    sources = [job.attributes or job.embeddings]
    if job.existing is not None and _has_columns(job.existing, job.keep_columns):
        sources.append(job.existing)
    return sources


def _has_columns(path: Path, names: tuple[str, ...]) -> bool:
    from ugt_ensemble.catalog.files import read_catalog_columns

    try:
        read_catalog_columns(path, names)
    except InputFileError:
        return False
    return True


def _report(job: SemanticIdJob, report: dict, without_columns: int, seconds: float) -> dict:
    report = dict(report)
    report["collisions"] = {**report.get("collisions", {}), "rule": COLLISION_RULE}
    if job.keep_columns:
        report["kept_columns"] = {"names": list(job.keep_columns), "items_without_a_row": without_columns}
    report["files"] = {
        "embeddings": str(job.embeddings),
        "existing_catalog": None if job.existing is None else str(job.existing),
        "catalog": str(job.output),
        "codebooks": str(codebooks_path(job.output)),
        "report": str(report_path(job.output)),
    }
    report["total_seconds"] = round(seconds, 3)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def summary(report: dict) -> str:
    """The report in a few lines for the terminal."""
    used = report["codes_used"]
    lines = [f"{report['items']} items ({report['new_items']} encoded, {report['existing_items']} kept) -> "
             f"{report['files']['catalog']}",  # fmt: skip
             f"codes used: l1 {used['l1']}, l2 {used['l2']}, l3 {used['l3']}; {used['l1_l2_prefixes']} (l1, l2) "
             f"prefixes, at most {used['most_items_per_prefix']} items in one"]  # fmt: skip
    collisions = report.get("collisions", {})
    if "moved_items" in collisions:
        lines.append(f"collisions: {collisions['colliding_triples']} shared triple(s), {collisions['moved_items']} "
                     f"item(s) moved ({collisions['moved_within_prefix']} to another l3, "
                     f"{collisions['moved_to_other_l2']} to another l2, {collisions['moved_to_other_l1']} to another "
                     "l1)")  # fmt: skip
    errors = report.get("quantisation_error", [])
    if errors:
        lines.append("quantisation error (mean squared residual / mean squared norm): " +
                     ", ".join(f"level {e['level']} {e['relative']:.3f}" for e in errors))  # fmt: skip
    lines.append(f"time {report['total_seconds']:.1f} s, peak memory {report['peak_rss_mib']:.0f} MiB; report "
                 f"{report['files']['report']}")  # fmt: skip
    return "\n".join(lines)
