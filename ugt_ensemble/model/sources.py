"""The user's own model step from a file: a `torch.export` archive (.pt2), checked before torch reads it.

A .pt2 holds the graph as JSON and the weights as raw tensor bytes, which torch reads without
unpickling; but the format also allows more programs, legacy pickled weights and constants, and a pickled
fallback for its sample inputs, a graph may call any operator (including ones that write files), and
torch evaluates its symbolic sizes and guards as Python. Before loading, `load_step_archive` refuses an
archive holding any entry but those torch writes for its one program, or whose payload configs name
anything but its raw tensors (`pt2_reading`), whose declared sizes exceed the limit, whose graphs call an
operator off the allow-list, or whose sizes and guards are not plain arithmetic (`pt2_safety`); torch then
loads it reading only those entries, with every unpickling call refused (`loading_without_unpickling`). Pickled modules
(`torch.save(model)`) are refused with the way to make a .pt2 instead: `save_step_model`, or
`torch.export.save`.

A model that honours the business rules in its search (a module with `rule_step()`, e.g. a
`ConstrainedRecommender`) is saved as its rule step: eighteen inputs (encoder, rule and table tensors, in
contract order) and its fan-out caps in the archive entry `extra/ugt_fanout_caps` ("C2,C3"), which
`program_fanout_caps` gives back for the loaded program.
"""

from __future__ import annotations

import logging
import re
import weakref
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch.export import Dim, ExportedProgram
from torch.export.pt2_archive._package import load_pt2

from ugt_ensemble.errors import InputFileError, StepContractError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.pt2_reading import GRAPH, PROGRAM, check_archive_layout, loading_without_unpickling
from ugt_ensemble.model.pt2_safety import check_archive_sizes, check_program_json, check_program_operators
from ugt_ensemble.model.rule_program import rule_export_inputs
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import (
    ENCODER_INPUTS,
    RULE_INPUTS,
    RULE_NAMES,
    STEP_INPUTS,
    TABLE_INPUTS,
    TABLE_NAMES,
)

LOGGER = logging.getLogger(__name__)
HOW_TO_SAVE = (
    "save the model with ugt_ensemble.model.save_step_model(model, 'model.pt2', catalog_index) or "
    "torch.export.save(torch.export.export(model, example_inputs, dynamic_shapes=...), 'model.pt2')"
)
#: The archive entry (below `extra/`) holding a rule step's fan-out caps, "C2,C3".
CAPS_ENTRY = "ugt_fanout_caps"
_CAPS_TEXT = re.compile(r"([1-9][0-9]{0,5}),([1-9][0-9]{0,5})")
#: The fan-out caps of each program `load_step_archive` loaded from an archive that holds them.
_FANOUT_CAPS: weakref.WeakKeyDictionary[ExportedProgram, tuple[int, int]] = weakref.WeakKeyDictionary()
#: Axes of the rule and table inputs that must stay dynamic (their sizes change with requests and catalogs).
_GROWING = ("dead_pairs", "removed_items", "pairs", "items", "sets")


def save_step_model(
    model: torch.nn.Module, path: str | Path, index: CatalogIndex, max_batch_size: int = 64, max_seq_length: int = 1024
) -> Path:
    """Write `model` (a step-contract module) as a .pt2 that `build --model` takes: exported with a dynamic
    batch (1..max_batch_size) and sequence (1..max_seq_length), traced on packed histories of `index`.

    A module with `rule_step()` (a `ConstrainedRecommender`) is saved as that step (the rule and table tensors
    are inputs too, as in its ONNX export), with its fan-out caps in the archive."""
    sample = random_encoder_batch(index, batch=2, length=min(8, max_seq_length), rng=np.random.default_rng(0))
    args = tuple(torch.from_numpy(sample[name]) for name in ENCODER_INPUTS)
    batch, sequence = Dim("batch", min=1, max=max_batch_size), Dim("sequence", min=1, max=max_seq_length)
    dynamic: tuple[dict | None, ...] = tuple({0: batch, 1: sequence} for _ in args)
    extra: dict[str, str] = {}
    model = model.eval()
    if callable(getattr(model, "rule_step", None)):
        args, dynamic = rule_export_inputs(model, args, dynamic, batch)  # type: ignore[arg-type]
        extra[CAPS_ENTRY] = ",".join(map(str, model.fanout_caps))
        model = model.rule_step()  # type: ignore[operator]
    with torch.no_grad():
        program = torch.export.export(model, args, dynamic_shapes=dynamic)
    path = Path(path)
    torch.export.save(program, str(path), extra_files=extra or None)
    return path


def load_step_archive(path: str | Path, max_bytes: int | None = None) -> ExportedProgram:
    """The ExportedProgram of a .pt2 (InputFileError naming the file if it is not a tensor-only archive
    within `max_bytes` (default: `pt2_safety.max_archive_bytes()`) whose graphs call allowed operators).
    The fan-out caps the archive holds, if any, are `program_fanout_caps(program)`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"model {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise InputFileError(f"model {path}: not a torch.export archive (.pt2); {HOW_TO_SAVE}")
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive_sizes(path, archive, max_bytes)  # before any entry is read
            readable, caps = _check_archive(path, archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise InputFileError(f"model {path}: a damaged archive ({type(exc).__name__}: {exc})") from None
    try:
        with loading_without_unpickling(path, readable):  # torch's own loader, not torch.export.load's fallbacks
            program = load_pt2(str(path)).exported_programs[PROGRAM]
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad archive
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise InputFileError(f"model {path}: cannot load the archive ({type(exc).__name__}: {first})") from None
    check_program_operators(program, path)  # as torch deserialised it, before anything runs
    if caps is not None:
        _FANOUT_CAPS[program] = caps
    return program


def program_fanout_caps(program: ExportedProgram) -> tuple[int, int] | None:
    """The fan-out caps (C2, C3) the archive of `program` holds (None: it holds none, or was not loaded from one)."""
    return _FANOUT_CAPS.get(program)


def takes_rules(program: ExportedProgram) -> bool:
    """Whether `program` takes the eighteen inputs of a step that honours the rules in its search."""
    return len(program.graph_signature.user_inputs) == len(STEP_INPUTS) + len(RULE_INPUTS) + len(TABLE_INPUTS)


def check_program_signature(
    program: ExportedProgram, source: str, batch: tuple[int, int], seq: tuple[int, int]
) -> tuple[int, int] | None:
    """StepContractError unless `program` takes the six encoder tensors (dtypes, rank 2) with a batch and a
    sequence axis that cover the build's ranges `batch` and `seq` (min, max), or those six followed by the rule
    and table tensors (`runtime.contract.RULE_INPUTS`, `TABLE_INPUTS`, by name, with dynamic list, pair, item and
    set axes) of a step that honours the rules in its search. Returns its fan-out caps (None for six inputs)."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = list(program.graph_signature.user_inputs)
    rules = takes_rules(program)
    if len(inputs) != len(ENCODER_INPUTS) and not rules:
        raise StepContractError(
            f"{source} takes {len(inputs)} inputs; the step contract wants the six encoder tensors "
            f"{list(ENCODER_INPUTS)}, or those followed by all of {list(RULE_NAMES + TABLE_NAMES)} "
            "(a model that honours the rules)"
        )
    caps = program_fanout_caps(program) if rules else None
    if rules and caps is None:
        raise StepContractError(
            f"{source} takes the rule and table inputs but holds no fan-out caps (archive entry extra/{CAPS_ENTRY}, "
            "'C2,C3'): save it with ugt_ensemble.model.save_step_model, or torch.export.save(..., "
            f"extra_files={{'{CAPS_ENTRY}': 'C2,C3'}})"
        )
    ranges = {"batch": batch, "sequence": seq}
    for position, (spec, name) in enumerate(zip((*STEP_INPUTS, *RULE_INPUTS, *TABLE_INPUTS), inputs)):
        if position >= len(STEP_INPUTS) and name != spec.name:
            raise StepContractError(
                f"{source}: input {position + 1} is {name!r}; a model that honours the rules takes "
                f"{list(RULE_NAMES + TABLE_NAMES)} after the six encoder tensors, in that order"
            )
        value = placeholders[name].meta["val"]
        want = torch.from_numpy(np.zeros(0, dtype=spec.dtype)).dtype
        if value.dtype != want or value.dim() != len(spec.shape):
            raise StepContractError(
                f"{source}: input {spec.name} is {value.dtype} of rank {value.dim()}; "
                f"the contract wants {want} [{', '.join(map(str, spec.shape))}]"
            )
        for axis, label in enumerate(spec.shape):
            if label in ranges:
                _check_axis(program, source, spec.name, value.shape[axis], str(label), *ranges[str(label)])
            else:
                _check_rule_axis(source, spec.name, value.shape[axis], label)
    return caps


def _check_rule_axis(source: str, name: str, size: object, label: str | int) -> None:
    """StepContractError if a rule or table axis that changes with requests and catalogs is fixed, or a fixed
    axis of the contract has another size."""
    fixed = isinstance(size, int)
    if (label in _GROWING and fixed) or (isinstance(label, int) and (not fixed or size != label)):
        raise StepContractError(
            f"{source}: input {name} has a {'fixed ' if fixed else 'dynamic '}{label} axis"
            f"{f' of {size}' if fixed else ''}; the contract wants "
            f"{'a dynamic one' if label in _GROWING else label}: save it with ugt_ensemble.model.save_step_model"
        )


def _check_axis(
    program: ExportedProgram, source: str, name: str, size: object, label: str, low: int, high: int
) -> None:
    if isinstance(size, int):
        raise StepContractError(
            f"{source}: input {name} has a fixed {label} axis of {size}; export it with a dynamic {label} "
            f"(Dim('{label}', min={low}, max={high})), or use ugt_ensemble.model.save_step_model"
        )
    bounds = program.range_constraints.get(size.node.expr)  # type: ignore[attr-defined]
    if bounds is not None and (int(bounds.lower) > low or (bounds.upper.is_finite and int(bounds.upper) < high)):
        raise StepContractError(
            f"{source}: the {label} axis of {name} covers {bounds.lower}-{bounds.upper}, and the build asks for "
            f"{low}-{high}: export it with Dim('{label}', min={low}, max={high}) or build with a smaller range "
            f"(--max-{'batch-size' if label == 'batch' else 'seq-length'} {bounds.upper}, "
            f"ExportConfig.max_{'batch_size' if label == 'batch' else 'seq_length'})"
        )


def refuse_pickled_module(path: Path) -> InputFileError:
    """The error for a file that is not a .pt2: a pickled module, a state dict, or something else."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unpickling refused (a pickled module) or not a torch file at all
        return InputFileError(
            f"model {path}: not a torch.export archive; it looks like a pickled module, and loading one would "
            f"run its code. To serve it, {HOW_TO_SAVE}"
        )
    if isinstance(payload, dict):
        return InputFileError(
            f"model {path}: holds weights, not a model; --model takes a torch.export archive ({HOW_TO_SAVE}); "
            "weights of the reference UGT go to --checkpoint"
        )
    return InputFileError(f"model {path}: not a torch.export archive; {HOW_TO_SAVE}")


def _check_archive(path: Path, archive: zipfile.ZipFile) -> tuple[list[str], tuple[int, int] | None]:
    """InputFileError unless `archive` holds exactly the entries torch writes for one tensor-only program
    (`pt2_reading.check_archive_layout`) and its graph is checked; the entries torch may read and the
    archive's fan-out caps, if it holds them."""
    names = archive.namelist()
    roots = {PurePosixPath(n).parts[0] for n in names}
    if len(roots) != 1 or f"{next(iter(roots))}/archive_format" not in names:
        raise refuse_pickled_module(path)
    root = next(iter(roots))
    readable = check_archive_layout(path, archive, root, (CAPS_ENTRY,))
    check_program_json(path, archive, f"{root}/{GRAPH}")
    caps = _read_caps(path, archive, f"{root}/extra/{CAPS_ENTRY}") if f"extra/{CAPS_ENTRY}" in readable else None
    return readable, caps


def _read_caps(path: Path, archive: zipfile.ZipFile, name: str) -> tuple[int, int]:
    """The fan-out caps "C2,C3" of the archive entry `name` (InputFileError naming it otherwise)."""
    data = archive.read(name) if archive.getinfo(name).file_size <= 64 else b""
    match = _CAPS_TEXT.fullmatch(data.decode("ascii", errors="replace").strip())
    if match is None:
        raise InputFileError(
            f"model {path}: {name} is {data[:64]!r}, not the fan-out caps 'C2,C3' (two positive integers); "
            "save the model again with ugt_ensemble.model.save_step_model"
        )
    return int(match.group(1)), int(match.group(2))
