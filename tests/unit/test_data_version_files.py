"""What a data-only version does to the served version's files: nothing. Its model file is a copy (a reflink where
the filesystem has them), never a hard link: a new link, and the chmod that seals it, change the served file's
inode (link count, ctime), and Triton then reloads the served version (a second stub and warm-up in every
data-only switch, measured). The server is started without config auto-completion (one stub less per load), and
a version's bytecode is compiled once per distinct module."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from pathlib import Path

import pytest

from ugt_ensemble.config import BuildConfig
from ugt_ensemble.repository.writer import precompile, static_files
from ugt_ensemble.server.process import NO_AUTO_COMPLETE, TritonServer
from ugt_ensemble.serving.data_version import clone_file


def test_a_cloned_model_file_has_the_same_bytes_and_leaves_the_served_file_untouched(tmp_path):
    served = tmp_path / "1" / "model.onnx"
    served.parent.mkdir()
    served.write_bytes(os.urandom(3 << 20) + b"tail")
    served.chmod(0o444)
    before = os.stat(served)
    copy = tmp_path / "2" / "model.onnx"
    copy.parent.mkdir()
    clone_file(served, copy)
    copy.chmod(0o444)  # as sealing the new version does
    after = os.stat(served)
    assert copy.read_bytes() == served.read_bytes()
    assert os.stat(copy).st_ino != after.st_ino
    assert (after.st_ino, after.st_nlink, after.st_ctime_ns, after.st_mtime_ns, after.st_mode) == (
        before.st_ino, before.st_nlink, before.st_ctime_ns, before.st_mtime_ns, before.st_mode,
    )  # fmt: skip


def test_a_clone_never_overwrites_a_file(tmp_path):
    source, taken = tmp_path / "a", tmp_path / "b"
    source.write_bytes(b"new")
    taken.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        clone_file(source, taken)
    assert taken.read_bytes() == b"old"


def test_the_server_completes_no_config_and_the_flag_is_given_once(tmp_path):
    assert TritonServer(tmp_path).command().count(NO_AUTO_COMPLETE) == 1
    assert TritonServer(tmp_path, extra_args=(NO_AUTO_COMPLETE,)).command().count(NO_AUTO_COMPLETE) == 1


def test_bytecode_compiled_once_per_source_is_valid_for_every_copy(tmp_path):
    config = BuildConfig(output_dir=tmp_path / "unused")
    files = static_files(config, 2)
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    precompile(tmp_path, config, 2)
    assert len(set(files.values())) < len(files)  # the steps share modules: compiled once, copied
    for relative, content in files.items():
        source = tmp_path / relative
        cached = Path(importlib.util.cache_from_source(str(source))).read_bytes()
        # a hash-checked pyc (flags 0b11) of exactly this source's bytes
        assert cached[4:8] == (3).to_bytes(4, "little") and cached[8:16] == importlib.util.source_hash(content)
        code = importlib.machinery.SourceFileLoader(source.stem, str(source)).get_code(source.stem)
        assert code.co_filename == str(source)  # an import names the file it found, not the compiled one
