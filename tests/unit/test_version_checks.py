"""Versions offline: cleanup keeps every version an ensemble or variant serves, `versions` tells the truth
afterwards, and `validate` fails, one line per problem, on a repository whose versions cannot load."""

import json
import shutil

import pytest

from ugt_ensemble.cli import main
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.manifest import write_manifest
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble.serving.versions import VersionedRepository

STEPS = ("preprocess", "ugt_trt", "postprocess")


@pytest.fixture
def repository(tmp_path, catalog):
    """A written repository (a placeholder model file) with versions 1-3 side by side, serving 3."""
    config = BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu())
    write_models(tmp_path, config, catalog.index())
    (tmp_path / "ugt_trt" / "1" / "model.onnx").write_bytes(b"placeholder for the file checks")
    names = {"preprocess_name": STEPS[0], "step_name": STEPS[1], "postprocess_name": STEPS[2]}
    manifest = {"generator": "ugt-ensemble test", "ensemble": "ugt_recommend", "triton": names,
                "models": ["ugt_recommend", *STEPS], "files": [], "versions": {}}  # fmt: skip
    for number in (2, 3):
        for step in STEPS:
            shutil.copytree(tmp_path / step / "1", tmp_path / step / str(number))
        manifest["versions"][str(number)] = {"created": "now", "model_source": "copy", "catalog": {}}
    write_manifest(tmp_path, manifest)
    repo = VersionedRepository(tmp_path)
    repo.keep_loaded([1, 2, 3])
    repo.pin(3)
    assert validate_deployment(tmp_path)["valid"], validate_deployment(tmp_path)["errors"]
    return tmp_path


def test_cleanup_keeps_the_version_a_variant_serves(repository, capsys):
    assert main(["variant", "--model-repository", str(repository), "--name", "ugt_b", "--version", "1"]) == 0
    capsys.readouterr()
    assert main(["versions", "--model-repository", str(repository), "--cleanup", "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert "Deleted versions [2]" in out and "Kept version 1: served by ugt_b" in out
    assert "variant ugt_b serves version 1" in out
    repo = VersionedRepository(repository)
    assert repo.numbers() == [1, 3] and repo.loaded_policy() == [1, 3] and repo.variants() == {"ugt_b": 1}
    assert validate_deployment(repository)["valid"], validate_deployment(repository)["errors"]
    with pytest.raises(RepositoryError, match="version 1 is served by ugt_b"):
        repo.remove(1)


def test_cleanup_keeps_a_variant_the_manifest_does_not_name(repository):
    Rollout(repository).add_variant("ugt_c", 2)
    manifest = json.loads((repository / "ugt_build.json").read_text())
    manifest["variants"] = {}
    write_manifest(repository, manifest)  # the manifest lost it; its config still pins 2
    assert Rollout(repository).cleanup(keep=1) == [1]
    assert VersionedRepository(repository).numbers() == [2, 3]


def test_validate_fails_when_a_variant_pins_a_deleted_version(repository, capsys):
    Rollout(repository).add_variant("ugt_b", 1)
    for step in STEPS:
        shutil.rmtree(repository / step / "1")  # what the old cleanup did
    assert main(["validate", "--model-repository", str(repository)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("  - ")]
    assert any("ugt_b: pins version 1 of preprocess, which has no folder preprocess/1/" in line for line in lines), out
    assert sum("ugt_b: pins version 1" in line for line in lines) == 3
    assert main(["versions", "--model-repository", str(repository)]) == 0
    assert "variant ugt_b pins version 1, which is missing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        ("manifest names 7", "ugt_build.json: names version 7, but preprocess/7/, ugt_trt/7/, postprocess/7/"),
        ("step folder gone", "ugt_recommend: pins version 3 of ugt_trt, which has no folder ugt_trt/3/"),
        ("model file gone", "ugt_trt/2: missing model.onnx (its model_file parameter)"),
        ("policy drops pin", "ugt_recommend: pins version 3 of postprocess, which its version_policy does not load"),
        ("variant config gone", "names variant 'ugt_b', which has no ugt_b/config.pbtxt"),
    ],
)
def test_validate_fails_on_versions_that_cannot_load(repository, breakage, error):
    manifest = json.loads((repository / "ugt_build.json").read_text())
    if breakage == "manifest names 7":
        manifest["versions"]["7"] = manifest["versions"]["2"]
    elif breakage == "step folder gone":
        shutil.rmtree(repository / "ugt_trt" / "3")
    elif breakage == "model file gone":
        (repository / "ugt_trt" / "2" / "model.onnx").unlink()
    elif breakage == "policy drops pin":
        text = (repository / "postprocess" / "config.pbtxt").read_text()
        (repository / "postprocess" / "config.pbtxt").write_text(text.replace("versions: 3", ""))
    elif breakage == "variant config gone":
        manifest["variants"] = {"ugt_b": 1}
    write_manifest(repository, manifest)
    result = validate_deployment(repository)
    assert not result["valid"] and any(error in e for e in result["errors"]), result["errors"]


def test_a_url_without_an_operator_key_is_one_line_and_changes_nothing(repository, tmp_path_factory, monkeypatch,
                                                                       capsys):  # fmt: skip
    monkeypatch.delenv("UGT_OPERATOR_KEY", raising=False)
    monkeypatch.delenv("UGT_OPERATOR_KEY_FILE", raising=False)
    monkeypatch.setenv("UGT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    args = ["--model-repository", str(repository), "--url", "127.0.0.1:9"]
    for command in (["rollback"], ["versions", "--cleanup"], ["variant", "--name", "ugt_b", "--version", "1"]):
        assert main([*command, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "$UGT_OPERATOR_KEY" in err and "--operator-key-file" in err, err
    assert main(["rollback", *args, "--operator-key-file", str(repository / "nope")]) == 2
    assert "--operator-key-file" in capsys.readouterr().err
    repo = VersionedRepository(repository)
    assert repo.pinned() == 3 and repo.numbers() == [1, 2, 3] and repo.variants() == {}


def test_a_switch_the_server_refuses_leaves_the_pin_as_it_was(repository, monkeypatch, capsys):
    monkeypatch.setenv("UGT_OPERATOR_KEY", "k" * 32)
    assert main(["rollback", "--model-repository", str(repository), "--url", "127.0.0.1:9"]) == 2
    assert "loading ugt_recommend failed" in capsys.readouterr().err
    assert VersionedRepository(repository).pinned() == 3
