#!/usr/bin/env bash
# Regenerate BENCHMARKS.md (and benchmarks/): install (scripts/setup.sh), build a repository with the naive
# peer, then run the benchmark suite against one tritonserver on free loopback ports. Takes ~10 minutes.
# Extra arguments go to `ugt_ensemble bench`, e.g. --duration 20 --measurement-ms 6000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m ugt_ensemble build --output-dir bench-results/repository --naive-peer -q
python -m ugt_ensemble bench --model-repository bench-results/repository --suite BENCHMARKS.md \
  --output-dir benchmarks "$@"
