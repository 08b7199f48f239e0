"""`build`'s rule probe: a model step that declares the rule inputs must honour them, since postprocess trusts it.

The built ConstrainedRecommender passes; the same ONNX model run with its rule tensors dropped (a model that takes
the inputs and ignores them) returns its own excluded top items and is refused by name.
"""

from __future__ import annotations

import json

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ExportError
from ugt_ensemble.export.rule_probe import EXCLUDED, ROWS, probe_rule_compliance, require_rule_compliance
from ugt_ensemble.export.validate import onnx_runner
from ugt_ensemble.runtime.contract import RULE_NAMES


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_config):
    export = ExportConfig(precision="fp32", max_seq_length=64, validation_shapes=((1, 1), (2, 16)))
    config = BuildConfig(output_dir=tmp_path_factory.mktemp("rule_probe") / "repo", model_config=tiny_config, seed=3,
                         export=export, triton=TritonConfig.cpu())  # fmt: skip
    result = build_repository(config)
    return config, result.prepared


def test_the_built_constrained_model_honours_every_rule_and_the_build_records_it(built):
    config, prepared = built
    assert prepared.rule_compliance is not None and prepared.rule_compliance.ok
    assert set(prepared.rule_compliance.checked) == {"exclude", "exclude_history"}
    assert all(count > 0 for count in prepared.rule_compliance.checked.values())
    recorded = json.loads((config.output_dir / "ugt_build.json").read_text())["rule_compliance"]
    assert recorded == {"checked": prepared.rule_compliance.checked, "broken": {"exclude": 0, "exclude_history": 0}}


def test_a_model_that_ignores_its_rule_inputs_is_refused_naming_the_broken_rule(built):
    config, prepared = built
    run = onnx_runner(prepared.onnx_path, data=prepared.data)
    ignoring = lambda feed: run({k: v for k, v in feed.items() if k not in RULE_NAMES})  # noqa: E731
    compliance = probe_rule_compliance(ignoring, prepared.data, config.packing, seed=config.seed)
    assert compliance.broken["exclude"] == ROWS * EXCLUDED  # its own top items, every one returned again
    with pytest.raises(ExportError, match=r"declares the rule inputs but does not honour them .*exclude 160/"):
        require_rule_compliance(compliance, "my model")
