#!/usr/bin/env bash
# Benchmark a served repository, as in the seeds: a thin wrapper over `python -m ugt_ensemble bench`.
#   --url HOST:PORT     gRPC address of a running server (default: start one on $MODEL_REPOSITORY)
#   --model NAME        model to load (default: the repository's ensemble)
#   --requests N        requests per run
#   --concurrency LIST  requests in flight, e.g. 1,2,4,8
#   --perf-analyzer     also run NVIDIA perf_analyzer (per-step breakdown)
# Defaults are BenchmarkConfig's (`python -m ugt_ensemble bench --help` shows them). MODEL_REPOSITORY
# (default: ensemble) names the built repository (catalog, packing, names). Other arguments, and these
# too, go to `ugt_ensemble bench` as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_REPOSITORY=${MODEL_REPOSITORY:-ensemble}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PYTHON" -m ugt_ensemble bench --model-repository "$MODEL_REPOSITORY" "$@"
