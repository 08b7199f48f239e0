"""Sealed data files (issue 22, item 4): what a build records, and every check against it (load, the per-batch
guard, `validate`, the watchdog's data check) on real files truncated, overwritten or removed.
Served: tests/integration/test_damaged_data.py."""

import json
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.runtime.batching import answer_batch
from ugt_ensemble.runtime.constraint_data import META_FILE, ConstraintData
from ugt_ensemble.runtime.data_files import SEAL_FILE, DataFileError, read_seal, seal, sha256_of
from ugt_ensemble.runtime.errors import SERVER_ERROR
from ugt_ensemble.server.data_watch import DataWatch

SET_ITEMS = "table_set_items.npy"


@pytest.fixture
def saved(tmp_path, catalog):
    folder = tmp_path / "catalog"
    ConstraintData.build(catalog.index(), {"even": catalog.item_ids % 2 == 0}).save(folder)
    return folder


@pytest.fixture
def repository(tmp_path, catalog):
    """A written repository whose model step has a model file and external data (placeholders) before the seal."""
    step = tmp_path / "repo" / "ugt_trt" / "1"
    step.mkdir(parents=True)
    (step / "model.onnx").write_bytes(b"placeholder model" * 64)
    (step / "weights.bin").write_bytes(bytes(range(256)) * 16)
    config = BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu())
    write_models(tmp_path / "repo", config, catalog.index())
    return tmp_path / "repo"


def _overwrite(path, content: bytes) -> None:
    """Write into the same file (root ignores its 0444 mode), as `dd conv=notrunc` or `truncate` would."""
    with open(path, "r+b") as file:
        file.write(content)
        file.truncate(len(content))


def test_save_records_every_file_read_only(saved):
    records = read_seal(saved)
    names = {p.name for p in saved.iterdir()} - {SEAL_FILE}
    assert set(records) == names and META_FILE in names and SET_ITEMS in names
    for name, recorded in records.items():
        assert (saved / name).stat().st_size == recorded.size and sha256_of(saved / name) == recorded.sha256
        assert (saved / name).stat().st_mode & 0o777 == 0o444
    assert (saved / SEAL_FILE).stat().st_mode & 0o777 == 0o444
    ConstraintData.load(saved)


def test_a_saved_folder_saved_again_gets_new_files(saved, catalog):
    """A save never writes into an existing (read-only, maybe hard-linked) file: a link keeps the old bytes."""
    linked = saved.parent / "linked.npy"
    os.link(saved / SET_ITEMS, linked)
    before = linked.read_bytes()
    ConstraintData.build(catalog.index(), {"odd": catalog.item_ids % 2 == 1}).save(saved)
    assert linked.read_bytes() == before and (saved / SET_ITEMS).stat().st_ino != linked.stat().st_ino
    ConstraintData.load(saved)


def test_load_names_the_damaged_file_and_what_was_recorded(saved):
    victim = saved / SET_ITEMS
    content = victim.read_bytes()
    _overwrite(victim, content[:128])
    with pytest.raises(DataFileError, match=rf"{SET_ITEMS}: 128 bytes, {len(content)} recorded when written"):
        ConstraintData.load(saved)
    _overwrite(victim, content[:128] + bytes(len(content) - 128))
    with pytest.raises(DataFileError, match=rf"{SET_ITEMS}: sha256 \w+\.\.\., \w+\.\.\. recorded .*content changed"):
        ConstraintData.load(saved)
    victim.unlink()
    with pytest.raises(DataFileError, match=rf"{SET_ITEMS}: missing, recorded with {len(content)} bytes"):
        ConstraintData.load(saved)
    (saved / SEAL_FILE).unlink()
    with pytest.raises(DataFileError, match=rf"{SEAL_FILE}: cannot read the record"):
        ConstraintData.load(saved)


def test_a_record_naming_a_file_outside_its_folder_is_refused(saved):
    document = json.loads((saved / SEAL_FILE).read_text())
    document["files"]["../secret"] = {"size": 1, "sha256": "0" * 64}
    (saved / SEAL_FILE).unlink()
    (saved / SEAL_FILE).write_text(json.dumps(document))
    with pytest.raises(DataFileError, match=r"names '\.\./secret', which is not a file inside"):
        read_seal(saved)


def test_the_guard_sees_the_mapped_file_truncated_through_any_link(saved, tmp_path):
    data = ConstraintData.load(saved)
    assert len(data.files) == len(read_seal(saved))
    other = tmp_path / "another_version.npy"
    os.link(saved / SET_ITEMS, other)  # what a version folder sharing the file holds
    content = other.read_bytes()
    data.files.check()
    _overwrite(other, content[:128])
    with pytest.raises(DataFileError, match=rf"{SET_ITEMS} changed under the loaded model: 128 bytes"):
        data.files.check()
    (saved / SET_ITEMS).unlink()
    (saved / SET_ITEMS).write_bytes(content)  # a new, intact file under the name: not the one mapped
    with pytest.raises(DataFileError, match="changed under the loaded model"):
        data.files.check()
    _overwrite(other, content)  # the mapped file restored in place
    data.files.check()
    assert len(ConstraintData.load(saved, mmap=False, verify=False).files) == 0  # in memory: nothing to guard


def test_a_failing_guard_refuses_the_whole_batch_without_running_it():
    ran = []

    def guard() -> None:
        raise DataFileError("data file x.npy changed under the loaded model: 128 bytes, 4140 recorded")

    outcomes = answer_batch([1, 2, 3], lambda r: r, lambda batch: ran.append(batch) or [{}] * len(batch), guard)
    assert ran == [] and len(outcomes) == 3
    assert all(o.code == SERVER_ERROR and "x.npy changed under the loaded model" in o.error for o in outcomes)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another owner")
def test_the_owner_cannot_write_into_a_sealed_file():
    """Root ignores the mode bits (the hashes catch its writes); anyone else, the files' owner included, cannot."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    folder = Path(tempfile.mkdtemp(prefix="ugt-sealed-"))  # in /tmp: a path `nobody` can walk
    try:
        folder.chmod(0o755)
        model = folder / "model.onnx"
        model.write_bytes(b"weights")
        os.chown(model, nobody.pw_uid, nobody.pw_gid)
        write = ["sh", "-c", 'printf x 1<>"$0"', str(model)]  # open for writing, without truncating
        assert subprocess.run(write, user=nobody.pw_uid, capture_output=True).returncode == 0  # 0644: it can
        seal(folder, ["model.onnx"])
        done = subprocess.run(write, user=nobody.pw_uid, capture_output=True, text=True)
        assert done.returncode != 0 and "Permission denied" in done.stderr, done.stderr
        assert model.read_bytes() == b"xeights"
    finally:
        shutil.rmtree(folder)


def test_written_repositories_seal_their_model_files_and_validate_checks_them(repository):
    step = repository / "ugt_trt" / "1"
    assert set(read_seal(step)) == {"model.onnx", "weights.bin"}  # not model.py, ugt_runtime/, catalog/
    assert validate_deployment(repository)["valid"], validate_deployment(repository)["errors"]
    content = (step / "weights.bin").read_bytes()
    _overwrite(step / "weights.bin", content[:-1] + b"!")
    catalog = repository / "preprocess" / "1" / "catalog" / SET_ITEMS
    _overwrite(catalog, catalog.read_bytes()[:128])  # one inode: every step's catalog folder
    errors = validate_deployment(repository)["errors"]
    assert [e for e in errors if f"{step}/weights.bin: sha256" in e], errors
    damaged = {e.split("/catalog/")[0].rsplit("/", 2)[1] for e in errors if f"catalog/{SET_ITEMS}: 128 bytes" in e}
    assert damaged >= {"preprocess", "postprocess"}, errors


def test_the_data_watch_reports_damage_once_and_its_repair(repository, caplog):
    watch = DataWatch(repository)
    assert watch.check() == {} and watch.failed_checks == 0
    victim = repository / "postprocess" / "1" / "catalog" / SET_ITEMS
    content = victim.read_bytes()
    _overwrite(victim, content[:128])
    with caplog.at_level(logging.WARNING, logger="ugt_ensemble.server.data_watch"):
        steps = watch.damaged_models()  # every step whose catalog folder links the file
        assert steps >= {"preprocess", "postprocess"}
        watch.check()
        assert watch.failed_checks == 2 and len(watch.damage) == len(steps)
        assert all(f"128 bytes, {len(content)} recorded" in p for p in watch.damage.values())
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == len(steps)  # once per damaged path, not once per round
        _overwrite(victim, content[:-8] + bytes(8))  # the size back, not the content
        assert all("content changed" in p for p in watch.check().values())
        _overwrite(victim, content)
        assert watch.check() == {} and watch.damage == {}
    assert sum("matches its recorded size and hash again" in r.message for r in caplog.records) == len(steps)
    model = repository / "ugt_trt" / "1" / "model.onnx"
    _overwrite(model, model.read_bytes().replace(b"placeholder", b"PLACEHOLDER", 1))
    assert watch.damaged_models() == {"ugt_trt"}
