"""The product package (`ugt_ensemble`) stands without the development package (`ugt_ensemble_dev`, dev/).

The benchmark harness, the naive peer, the reliability suite and its fuzzers, and test traffic live in dev/; the
product reaches them only through the `bench` command's lazy entry and the naive peer's entry point.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[2]
PRODUCT = ROOT / "ugt_ensemble"
#: The one module of the product that may name the development package (the `bench` command's entry).
LAZY_ENTRY = PRODUCT / "cli" / "dev_commands.py"
#: Run first in a subprocess: the development package cannot be imported, as where only the product is installed.
WITHOUT_DEV = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ugt_ensemble_dev":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""


def _dev_references(path: Path) -> list[str]:
    """The imports of `path`, and the string constants, that name the development package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.startswith("ugt_ensemble_dev")]
    return found


def test_the_product_imports_the_development_package_only_in_the_bench_entry():
    modules = [p for p in PRODUCT.rglob("*.py") if p != LAZY_ENTRY]
    assert len(modules) > 100
    assert [r for p in modules for r in _dev_references(p)] == []
    assert _dev_references(LAZY_ENTRY)  # the entry itself names it (so this test would notice a rename)


def test_packaging_lists_every_package_of_each_distribution():
    for root, name in ((ROOT, "ugt_ensemble"), (ROOT / "dev", "ugt_ensemble_dev")):
        listed = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
        on_disk = {
            ".".join(p.parent.relative_to(root).parts) for p in (root / name).rglob("__init__.py")
        }
        assert on_disk <= set(listed), f"{root / 'pyproject.toml'} misses {sorted(on_disk - set(listed))}"
    product = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert not [p for p in product if p.split(".")[-1] in ("bench", "reliability")]
    assert not (PRODUCT / "bench").exists() and not (PRODUCT / "reliability").exists()


def test_bench_without_the_development_package_says_how_to_install_it():
    code = WITHOUT_DEV + "from ugt_ensemble.cli import main\nsys.exit(main(sys.argv[1:]))"
    args = ["bench", "--model-repository", "nowhere", "--concurrency", "1,2"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e dev/" in lines[0] and "Traceback" not in done.stderr
    other = subprocess.run(
        [sys.executable, "-c", code, "stats", "--bogus"], capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 2 and "unrecognized arguments: --bogus" in other.stderr


def test_a_naive_peer_build_without_the_development_package_says_how_to_install_it():
    code = WITHOUT_DEV + (
        "from ugt_ensemble.config import BuildConfig, TritonConfig\n"
        "from ugt_ensemble.errors import MissingDependencyError\n"
        "from ugt_ensemble.repository.writer import static_files\n"
        "assert 'preprocess/1/model.py' in static_files(BuildConfig())\n"
        "try:\n    static_files(BuildConfig(triton=TritonConfig(naive_peer=True)))\n"
        "except MissingDependencyError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install -e dev/" in done.stdout


def test_the_naive_peer_comes_from_the_development_package():
    from ugt_ensemble.config import BuildConfig, TritonConfig
    from ugt_ensemble.repository.writer import static_files

    files = static_files(BuildConfig(triton=TritonConfig(naive_peer=True)))
    source = (ROOT / "dev" / "ugt_ensemble_dev" / "naive_peer" / "model.py").read_bytes()
    assert files["ugt_naive/1/model.py"] == source
    assert not [f for f in files if f.startswith("ugt_naive/1/ugt_runtime/")]  # it imports the installed packages
