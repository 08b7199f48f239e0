"""`build` deletes only what it can prove it wrote (issue: data loss through an untrusted manifest)."""

import json
import os
import time

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.config import BuildConfig, TritonConfig
from ugt_ensemble.errors import ConfigError, RepositoryError
from ugt_ensemble.repository import staging
from ugt_ensemble.repository.manifest import MANIFEST, previous_build
from ugt_ensemble.repository.staging import StagedRepository, check_replaceable

MODELS = ["ugt_recommend", "preprocess", "ugt_trt", "postprocess"]


def _manifest(root, models, files=None, generator="ugt-ensemble 0.1.0"):
    data = {"generator": generator, "models": models}
    if files is not None:
        data["files"] = files
    (root / MANIFEST).write_text(json.dumps(data))


def _tree(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _stage_and_commit(root, models=("preprocess",), ours=None):
    with StagedRepository(root, ours or {}) as staged:
        for name in models:
            _tree(staged.path, {f"{name}/config.pbtxt": "new", f"{name}/1/model.py": "new"})
        staged.commit(list(models), {"generator": "ugt-ensemble test"})


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    _tree(folder, {"precious.txt": "keep me"})
    return folder


@pytest.mark.parametrize("entry", ["../victim", "VICTIM_ABS", "", ".", "..", "a/b", "preprocess/../../victim"])
def test_a_manifest_naming_anything_but_model_folders_deletes_nothing(tmp_path, victim, entry):
    root = tmp_path / "repo"
    _tree(root, {"notes.md": "mine", "preprocess/config.pbtxt": "old"})
    _manifest(root, [str(victim) if entry == "VICTIM_ABS" else entry])
    with pytest.raises(RepositoryError, match="cannot be trusted.*nothing was changed"):
        check_replaceable(root, MODELS)
    with pytest.raises(RepositoryError, match="cannot be trusted"):
        _stage_and_commit(root)
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (root / "notes.md").read_text() == "mine" and (root / "preprocess/config.pbtxt").read_text() == "old"


@pytest.mark.parametrize(
    "manifest",
    [
        "not json",
        json.dumps(["preprocess"]),
        json.dumps({"models": ["preprocess"]}),  # not written by ugt-ensemble
        json.dumps({"generator": "ugt-ensemble", "models": "preprocess"}),
        json.dumps({"generator": "ugt-ensemble", "models": ["preprocess"], "files": ["../../etc/passwd"]}),
        json.dumps({"generator": "ugt-ensemble", "models": ["preprocess"], "files": ["/etc/passwd"]}),
        json.dumps({"generator": "ugt-ensemble", "models": ["preprocess"], "files": ["other/x"]}),
    ],
)
def test_untrusted_manifests_are_an_error(tmp_path, manifest):
    (tmp_path / MANIFEST).write_text(manifest)
    with pytest.raises(RepositoryError, match="cannot be trusted"):
        previous_build(tmp_path)


def test_unknown_files_in_step_folders_stop_the_build_and_are_named(tmp_path):
    root = tmp_path / "repo"
    _tree(root, {"preprocess/config.pbtxt": "old", "preprocess/notes.txt": "mine", "preprocess/1/model.py": "old"})
    _manifest(root, MODELS, files=["preprocess/config.pbtxt", "preprocess/1/model.py"])
    with pytest.raises(RepositoryError, match=r"preprocess/notes.txt") as info:
        _stage_and_commit(root)
    assert "preprocess/config.pbtxt" not in str(info.value)
    assert (root / "preprocess/notes.txt").read_text() == "mine"
    assert (root / "preprocess/config.pbtxt").read_text() == "old"


def test_a_step_folder_without_any_manifest_is_the_users(tmp_path):
    root = tmp_path / "repo"
    _tree(root, {"preprocess/notes.txt": "mine"})
    with pytest.raises(RepositoryError, match="notes.txt"):
        check_replaceable(root, MODELS)


def test_links_are_never_followed_or_removed(tmp_path, victim):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "preprocess").symlink_to(victim, target_is_directory=True)
    _manifest(root, MODELS, files=[])
    with pytest.raises(RepositoryError, match="symbolic link"):
        _stage_and_commit(root)
    (root / "preprocess").unlink()
    _tree(root, {"preprocess/config.pbtxt": "old"})
    (root / "preprocess" / "data").symlink_to(victim, target_is_directory=True)
    _manifest(root, MODELS, files=["preprocess/config.pbtxt"])
    with pytest.raises(RepositoryError, match="data \\(a symbolic link\\)"):
        _stage_and_commit(root)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_previous_build_is_replaced_and_everything_else_stays(tmp_path):
    root = tmp_path / "repo"
    _tree(
        root,
        {
            "README.md": "mine",
            "mine/config.pbtxt": "another model of the user's",
            "preprocess/config.pbtxt": "old",
            "preprocess/1/__pycache__/model.cpython-311.pyc": "bytecode",
            "ugt_naive/config.pbtxt": "old peer",
        },
    )
    _manifest(root, ["preprocess", "ugt_naive"], files=["preprocess/config.pbtxt", "ugt_naive/config.pbtxt"])
    _stage_and_commit(root)
    assert (root / "preprocess/config.pbtxt").read_text() == "new"
    assert not (root / "preprocess/1/__pycache__").exists()
    assert not (root / "ugt_naive").exists()  # the previous build's model that this build does not write
    assert (root / "README.md").read_text() == "mine" and (root / "mine/config.pbtxt").exists()
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["models"] == ["preprocess"]
    assert manifest["files"] == ["preprocess/1/model.py", "preprocess/config.pbtxt"]
    assert not list(tmp_path.glob(".repo.staging-*"))


def test_files_identical_to_what_the_build_writes_are_ours(tmp_path):
    """A checkout's committed `ensemble/<step>/1/model.py` (no manifest yet) does not block the build."""
    root = tmp_path / "repo"
    _tree(root, {"preprocess/1/model.py": "adapter source"})
    check_replaceable(root, MODELS, {"preprocess/1/model.py": b"adapter source"})
    with pytest.raises(RepositoryError, match="model.py"):
        check_replaceable(root, MODELS, {"preprocess/1/model.py": b"another version"})


def test_legacy_manifests_without_a_file_list_cover_only_generated_files(tmp_path):
    root = tmp_path / "repo"
    _tree(root, {"preprocess/config.pbtxt": "", "preprocess/1/catalog.npz": "", "preprocess/1/ugt_runtime/a.py": ""})
    _manifest(root, MODELS)
    check_replaceable(root, MODELS)
    _tree(root, {"preprocess/1/notes.txt": "mine"})
    with pytest.raises(RepositoryError, match="notes.txt"):
        check_replaceable(root, MODELS)


def test_a_failed_swap_puts_the_old_build_back(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    _tree(root, {"preprocess/config.pbtxt": "old"})
    _manifest(root, MODELS, files=["preprocess/config.pbtxt"])

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(staging, "write_manifest", broken)
    with pytest.raises(RepositoryError, match="restored the old one"):
        _stage_and_commit(root)
    assert (root / "preprocess/config.pbtxt").read_text() == "old"


def test_output_dir_that_is_a_file_fails_before_any_work(tmp_path):
    target = tmp_path / "repo"
    target.write_text("a file")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        build_repository(BuildConfig(output_dir=target))
    assert time.perf_counter() - start < 5
    assert target.read_text() == "a file"


def test_build_refuses_before_any_work_and_leaves_no_staging(tmp_path, victim):
    root = tmp_path / "repo"
    _tree(root, {"notes.md": "mine"})
    _manifest(root, ["../victim"])
    start = time.perf_counter()
    with pytest.raises(RepositoryError):
        build_repository(BuildConfig(output_dir=root, triton=TritonConfig()))
    assert time.perf_counter() - start < 5  # no export ran
    assert (victim / "precious.txt").exists() and (root / "notes.md").exists()
    assert sorted(os.listdir(tmp_path)) == ["repo", "victim"]
