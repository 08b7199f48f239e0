"""The pure parts of the business-rules benchmark (`python -m ugt_ensemble_dev.bench.rules`): its command line, the
rule documents (read back by the product's own parser), the exclusions, the next catalog, the answer checks, the
smaps_rollup reader and the tables. No server: the subcommands themselves are measurement tools."""

import json
import math

import numpy as np
import pytest

from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.client.load_results import BenchmarkResult
from ugt_ensemble.client.results import Failure, Recommendation
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.constraint_tables import fanouts
from ugt_ensemble.runtime.contract import default_fanout_caps
from ugt_ensemble.runtime.history import parse_request
from ugt_ensemble_dev.bench.rules import parser
from ugt_ensemble_dev.bench.rules_catalogs import allow_mask, build_config, next_catalog
from ugt_ensemble_dev.bench.rules_documents import (
    VARIANTS,
    check_answers,
    fill_exclusions,
    parse_variants,
    rule_document,
)
from ugt_ensemble_dev.bench.rules_latency import latency_table
from ugt_ensemble_dev.bench.rules_memory import MemoryRow, memory_table, parse_smaps_rollup
from ugt_ensemble_dev.bench.rules_report import RecordingProgress, event_ids

SMAPS_ROLLUP = """5619a6cfc000-7ffee6d95000 ---p 00000000 00:00 0                          [rollup]
Rss:               10240 kB
Pss:                6144 kB
Pss_Dirty:          1024 kB
Pss_File:           4096 kB
Shared_Clean:       5120 kB
Shared_Dirty:          0 kB
Private_Clean:      1024 kB
Private_Dirty:      4096 kB
Anonymous:          4096 kB
THPeligible:    0
"""


def test_the_command_line_defaults_and_checks():
    args = parser().parse_args(["latency", "--repository", "r"])
    assert args.concurrency == (1, 8) and args.variants == VARIANTS and args.seconds == 20 and args.exclusions == 1000
    args = parser().parse_args(["latency", "--repository", "r", "--concurrency", "1,2,8", "--variants", "allow,none"])
    assert args.concurrency == (1, 2, 8) and args.variants == ("none", "allow")
    assert parser().parse_args(["build", "--items", "5", "--output", "o"]).allow_share == 0.01
    memory = parser().parse_args(["memory", "--repository", "r", "--server-python", "/old/bin/python"])
    assert memory.server_python == "/old/bin/python" and memory.requests == 32
    for bad in (["latency", "--repository", "r", "--concurrency", "0"], ["latency", "--repository", "r",
                "--variants", "sets"], ["switch", "--repository", "r"]):  # fmt: skip
        with pytest.raises(SystemExit):
            parser().parse_args(bad)


def test_variants_put_none_first_and_refuse_unknown_names():
    assert parse_variants("exclusions,exclude_history") == ("none", "exclude_history", "exclusions")
    with pytest.raises(ValueError, match="unknown rule variant"):
        parse_variants("allow,blocklist")


def test_rule_documents_are_what_the_product_parses_into_each_rule():
    history = [3, {"item_id": 7, "type": "cart"}, 9]
    assert json.loads(rule_document("none", history)) == history
    _, rule = parse_request(rule_document("none", history))
    assert rule.exclude_history is None and rule.exclude.size == 0 and rule.sets == ()
    _, rule = parse_request(rule_document("exclude_history", history))
    assert rule.exclude_history is True
    parsed, rule = parse_request(rule_document("exclusions", history, [5, 6, 5000]))
    assert rule.exclude.tolist() == [5, 6, 5000] and len(parsed.item_ids) == 3
    _, rule = parse_request(rule_document("allow", history, set_name="in_stock"))
    assert rule.sets == ("in_stock",)
    _, rule = parse_request(rule_document("exclusions+exclude_history", history, [5]))
    assert rule.exclude.tolist() == [5] and rule.exclude_history is True and rule.sets == ()
    _, rule = parse_request(rule_document("exclusions+allow", history, [5], set_name="in_stock"))
    assert rule.exclude.tolist() == [5] and rule.exclude_history is None and rule.sets == ("in_stock",)
    with pytest.raises(ValueError):
        rule_document("blocklist", history)
    assert event_ids(history) == [3, 7, 9]


def test_exclusions_start_with_the_ranked_items_then_fill_with_distinct_catalog_items():
    item_ids = np.arange(1, 2001)
    chosen = fill_exclusions([40, 12, 40, 7], 1000, item_ids, np.random.default_rng(0))
    assert chosen[:3] == [40, 12, 7] and len(chosen) == len(set(chosen)) == 1000
    assert set(chosen) <= set(item_ids.tolist())
    assert fill_exclusions(list(range(1, 20)), 5, item_ids, np.random.default_rng(0)) == [1, 2, 3, 4, 5]


def test_the_next_catalog_removes_and_adds_items_within_the_export_caps():
    catalog = synthetic_catalog(20_000, seed=3)
    rng = np.random.default_rng(3)
    assert allow_mask(20_000, 0.01, rng).sum() == 200
    nxt = next_catalog(catalog, 0.05, 0.02, 0.01, rng)
    assert (~nxt.kept).sum() == 1000 and len(nxt.new_ids) == len(nxt.new_codes) == 400
    assert nxt.new_ids.min() > catalog.item_ids.max() and len(set(nxt.new_ids.tolist())) == 400
    pairs = {(a, b) for a, b in catalog.codes[:, :2].tolist()}
    assert all((a, b) in pairs for a, b in nxt.new_codes[:, :2].tolist())  # existing clusters only
    triples = {tuple(c) for c in catalog.codes.tolist()}
    assert not any(tuple(c) in triples for c in nxt.new_codes.tolist())  # fresh codes
    assert len({tuple(c) for c in nxt.new_codes.tolist()}) == 400
    caps = default_fanout_caps(*fanouts(catalog.index()), catalog.codebook_sizes)
    new = type(catalog).from_arrays(
        np.concatenate([catalog.item_ids[nxt.kept], nxt.new_ids]),
        np.concatenate([catalog.codes[nxt.kept], nxt.new_codes]),
        catalog.codebook_sizes,
        "next",
    )
    assert ConstraintData.build(new.index(), {}, caps).num_items == 19_400  # refused if a fan-out passed its cap


def _answer(items):
    ids = np.array(items + [-1] * (4 - len(items)))
    return Recommendation(ids, np.where(ids >= 0, -1.0, -np.inf), np.zeros((4, 3), dtype=np.int64))


def test_the_answer_check_counts_failures_short_answers_and_rule_violations():
    histories = [[1, 2], [3]]
    answers = [_answer([5, 2, 6, 7]), _answer([8, 9])]
    check = check_answers("exclude_history", histories, answers, 4)
    assert (check.requests, check.failed, check.short, check.violations) == (2, 0, 1, 1)
    assert check_answers("exclusions", histories, answers, 4, [[6, 7], [1]]).violations == 2
    assert check_answers("allow", histories, answers, 4, allowed={5, 6, 7, 8, 9}).violations == 1
    both = check_answers("exclusions+allow", histories, answers, 4, [[6, 7], [1]], allowed={5, 6, 7, 8, 9})
    assert both.violations == 3  # 6 and 7 excluded, 2 not allowed
    assert check_answers("exclusions+exclude_history", histories, answers, 4, [[2], []]).violations == 1  # 2 once
    failed = check_answers("none", histories, [Failure("row 0: bad"), answers[1]], 4)
    assert (failed.failed, failed.short, failed.first_error) == (1, 1, "row 0: bad")


def test_smaps_rollup_is_read_in_kib_and_reported_in_mib():
    fields = parse_smaps_rollup(SMAPS_ROLLUP)
    assert fields["Rss"] == 10240 and fields["Private_Dirty"] == 4096 and "THPeligible" not in fields
    row = MemoryRow.of("stub preprocess_0_0", 12, fields)
    assert (row.rss, row.pss, row.private, row.shared, row.file_pss, row.anonymous) == (10, 6, 5, 5, 4, 4)
    table = memory_table([row, MemoryRow.of("tritonserver", 11, fields)])
    assert "| stub preprocess_0_0 | 12 | 10.000 | 6.000 | 5.000 |" in table
    assert table.splitlines()[-1].startswith("| **total** | - | 20.000 | 12.000 | 10.000 |")


def test_the_latency_table_gives_ratios_to_no_rule_at_the_same_concurrency():
    def run(target, concurrency, ms, seconds):
        return BenchmarkResult.from_samples([ms / 1e3] * 10, 0, seconds, target=target, concurrency=concurrency)

    table = latency_table([run("none", 1, 4.0, 1.0), run("allow", 1, 5.0, 2.0), run("allow", 8, 6.0, 1.0)])
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert rows[1][0] == "| allow" and rows[1][-2:] == ["1.250", "0.500 |"]
    assert rows[2][-2:] == ["-", "- |"]  # no "none" run at concurrency 8
    assert not math.isnan(float(rows[0][3]))


def test_recording_progress_keeps_each_steps_seconds_in_a_shared_list():
    times = [("earlier", 1.0)]
    progress = RecordingProgress(enabled=False, times=times)
    with progress.step("Reading the catalog"):
        pass
    assert [title for title, _ in times] == ["earlier", "Reading the catalog"] and times[1][1] >= 0


def test_the_build_is_the_cpu_wheel_build_with_the_allow_column_and_the_instances_asked_for(tmp_path):
    config = build_config(tmp_path / "repo", tmp_path / "catalog.csv", seed=4, instances=2)
    assert config.target_server == "cpu-wheel" and config.export.set_columns == ("allow",)
    assert config.export.precision == "fp32" and config.export.validation_shapes == ((1, 1), (2, 16))
    t = config.triton
    assert (t.instance_count, t.preprocess.instances, t.postprocess.instances) == (2, 2, 2)
