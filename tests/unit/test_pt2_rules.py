"""A `ConstrainedRecommender` brought as a .pt2 (`build --model x.pt2`) honours the business rules in its search,
as the same module brought through the Python API does: `save_step_model` saves its rule step (eighteen inputs)
with its fan-out caps, the build exports the ONNX model with the rule and table inputs, and the manifest records
rules "search". The served ONNX model with rules equals the module's own eager `search` with the same rules."""

from __future__ import annotations

import zipfile

import numpy as np
import onnx
import pytest
import torch
from recommender import make_recommender

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, save_catalog_csv
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ExportError, InputFileError, StepContractError
from ugt_ensemble.export.onnx_contract import check_onnx_signature
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.validate import onnx_runner
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.contract import torch_runner
from ugt_ensemble.model.rule_step import SearchRules, SearchTables
from ugt_ensemble.model.sources import (
    check_program_signature,
    load_step_archive,
    program_fanout_caps,
    save_step_model,
)
from ugt_ensemble.repository.manifest import read_manifest
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import (
    CATALOG_DIR,
    ENCODER_INPUTS,
    FANOUT_CAPS_KEY,
    ONNX_FILE,
    RULE_NAMES,
    RULES_KEY,
    TABLE_NAMES,
)
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import pack_rules
from ugt_ensemble.serving.deploy import add_version

EXPORT = dict(precision="fp32", max_batch_size=16, max_seq_length=64)
ROWS, LENGTH = 16, 12


@pytest.fixture(scope="module")
def model(catalog):
    return make_recommender(catalog, max_length=64)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, model, index):
    return save_step_model(model, tmp_path_factory.mktemp("pt2") / "model.pt2", index, 16, 64)


@pytest.fixture(scope="module")
def built(tmp_path_factory, archive, catalog):
    """A repository built from the .pt2 with one item set (`even`: the items of even id)."""
    folder = tmp_path_factory.mktemp("pt2_build")
    save_catalog_csv(catalog, folder / "items.csv")
    even = catalog.item_ids[catalog.item_ids % 2 == 0]
    (folder / "even.txt").write_text("\n".join(map(str, even.tolist())) + "\n")
    config = BuildConfig(
        output_dir=folder / "repo", model_file=archive, triton=TritonConfig.cpu(), target_server="cpu-wheel",
        export=ExportConfig(**EXPORT, catalog_path=folder / "items.csv", item_sets=(("even", folder / "even.txt"),)),
    )  # fmt: skip
    result = build_repository(config)
    return config, result


def test_the_archive_holds_the_rule_step_and_its_fanout_caps(archive, model):
    program = load_step_archive(archive)
    assert program_fanout_caps(program) == model.fanout_caps
    assert list(program.graph_signature.user_inputs) == [*ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES]
    assert check_program_signature(program, "model.pt2", (1, 16), (1, 64)) == model.fanout_caps
    with pytest.raises(StepContractError, match="covers 1-16, and the build asks for 1-64"):
        check_program_signature(program, "model.pt2", (1, 64), (1, 64))


def test_the_build_serves_rules_in_the_search(built, model):
    config, result = built
    rules = read_manifest(config.output_dir)["rules"]
    assert rules == {"honoured": "search", "fanout_caps": list(model.fanout_caps), "item_sets": ["even"]}
    onnx_path = config.output_dir / config.triton.step_name / "1" / ONNX_FILE
    graph = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in graph.graph.initializer}
    assert [i.name for i in graph.graph.input if i.name not in initializers] == [
        *ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES
    ]  # fmt: skip
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert metadata[RULES_KEY] == "search" and metadata[FANOUT_CAPS_KEY] == ",".join(map(str, model.fanout_caps))
    signature = check_onnx_signature(onnx_path, 50)
    assert signature.rules_in_search and signature.fanout_caps == model.fanout_caps
    assert all(check.ok for check in result.prepared.validation)  # the .pt2 in PyTorch == its ONNX model


def _histories(catalog, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.choice(catalog.item_ids, size=int(rng.integers(1, LENGTH + 1))) for _ in range(ROWS)]


def _rules(catalog, rng: np.random.Generator) -> list[RuleRequest]:
    """Every rule, alone and together, across the rows."""

    def exclude(count: int) -> np.ndarray:
        return rng.choice(catalog.item_ids, size=count, replace=False).astype(np.int64)

    shapes = [
        RuleRequest(),
        RuleRequest(exclude_history=True),
        RuleRequest(exclude=exclude(300)),
        RuleRequest(sets=("even",)),
        RuleRequest(exclude_history=True, exclude=exclude(40), sets=("even",)),
        RuleRequest(exclude=exclude(1_000)),
    ]
    return [shapes[row % len(shapes)] for row in range(ROWS)]


def test_the_served_onnx_model_with_rules_equals_the_modules_own_search(built, model, catalog, index):
    config, _ = built
    folder = config.output_dir / config.triton.step_name / "1"
    data = ConstraintData.load(folder / CATALOG_DIR)  # the served version's constraint data
    rng = np.random.default_rng(5)
    histories, rules = _histories(catalog, rng), _rules(catalog, rng)
    packed = pack_histories([History(h, np.ones(len(h), dtype=np.int64)) for h in histories], index,
                            PackingConfig(max_seq_length=LENGTH, buckets=(LENGTH,)))  # fmt: skip
    rule_tensors = pack_rules(rules, histories, data, default_exclude_history=False)
    served_codes, served_scores = onnx_runner(folder / ONNX_FILE, data=data)({**packed.tensors, **rule_tensors})
    with torch.no_grad():
        codes, scores = model.search(
            *(torch.from_numpy(packed.tensors[name]) for name in ENCODER_INPUTS),
            rules=SearchRules.from_feed({k: np.array(v) for k, v in rule_tensors.items()}),
            tables=SearchTables.from_feed({k: np.array(v) for k, v in data.tables().items()}),
        )
    assert np.array_equal(served_codes, codes.numpy())
    np.testing.assert_allclose(served_scores, scores.numpy(), atol=1e-4)
    items = index.items_of(served_codes)
    for row, (rule, history) in enumerate(zip(rules, histories)):
        row_items = set(items[row].tolist())
        assert len(row_items) == 50  # 50 eligible items exist for every row
        if rule.exclude_history:
            assert not row_items & set(history.tolist())
        assert not row_items & set(rule.exclude.tolist())
        if rule.sets:
            assert all(item % 2 == 0 for item in row_items)


def test_the_eager_form_of_a_rule_program_runs_without_rules(archive, model, index):
    from ugt_ensemble.model.rule_program import RuleProgramStep

    program = load_step_archive(archive)
    eager = RuleProgramStep(program.module(), ConstraintData.build(index, None, program_fanout_caps(program)))
    feed = random_encoder_batch(index, 3, 9, np.random.default_rng(2))
    got, want = torch_runner(eager, "pt2")(feed), torch_runner(model, "module")(feed)
    assert np.array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)


def _without(archive, tmp_path, entry: str, replacement: bytes | None = None):
    """A copy of `archive` without (or with another content of) its entry ending in `entry`."""
    copy = tmp_path / f"copy{len(replacement or b'')}.pt2"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(copy, "w") as target:
        for name in source.namelist():
            if not name.endswith(entry):
                target.writestr(name, source.read(name))
            elif replacement is not None:
                target.writestr(name, replacement)
    return copy


def test_a_rule_program_without_caps_is_refused_in_one_line(tmp_path, archive, index):
    program = load_step_archive(_without(archive, tmp_path, "extra/ugt_fanout_caps"))
    assert program_fanout_caps(program) is None
    with pytest.raises(StepContractError, match="no fan-out caps.*save_step_model") as caught:
        check_program_signature(program, "model.pt2", (1, 16), (1, 64))
    assert "\n" not in str(caught.value)
    with pytest.raises(ExportError, match="no fan-out caps"):
        export_onnx(program, tmp_path / "x.onnx", ExportConfig(**EXPORT), index)
    for bad in (b"7", b"0,5", b"7,5,3", b"import os", b"1" * 100):
        with pytest.raises(InputFileError, match="not the fan-out caps 'C2,C3'"):
            load_step_archive(_without(archive, tmp_path, "extra/ugt_fanout_caps", bad))


def test_a_catalog_only_deploy_of_the_pt2_build_writes_only_data(built, catalog):
    config, _ = built
    root, step = config.output_dir, config.triton.step_name
    moved = Catalog.from_arrays(catalog.item_ids + 100_000, catalog.codes, catalog.codebook_sizes, "moved ids")
    save_catalog_csv(moved, root.parent / "new.csv")
    assert add_version(root, {}, root.parent / "new.csv") == 2  # before: "name the new version's model"
    served = [root / step / str(number) / ONNX_FILE for number in (1, 2)]
    assert served[0].read_bytes() == served[1].read_bytes()  # no export
    assert read_manifest(root)["versions"]["2"]["model"]["kind"] == "pt2"
    data = ConstraintData.load(root / step / "2" / CATALOG_DIR)
    assert data.index.item_ids.min() > 100_000 and data.set_names == ("even",)
