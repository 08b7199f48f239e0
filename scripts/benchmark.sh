#!/usr/bin/env bash
# Benchmark a served repository, as in the seeds: a thin wrapper over `python -m ugt_ensemble bench`.
#   --url HOST:PORT     gRPC address of a running server (default: start one on $MODEL_REPOSITORY)
#   --model NAME        model to load (default: ugt_recommend, the ensemble)
#   --requests N        requests per run (default: 1000)
#   --concurrency LIST  e.g. 1,8 (default: 1,2,4,8)
#   --perf-analyzer     also run NVIDIA perf_analyzer (per-step breakdown)
# MODEL_REPOSITORY (default: ensemble) names the built repository (catalog, packing). Other arguments go
# to `ugt_ensemble bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_REPOSITORY=${MODEL_REPOSITORY:-ensemble}
url=""; model=ugt_recommend; requests=1000; concurrency=1,2,4,8; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --perf-analyzer) extra+=(--perf-analyzer); shift ;;
    *) extra+=("$1"); shift ;;
  esac
done
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
args=(--model-repository "$MODEL_REPOSITORY" --model "$model" --requests "$requests" --concurrency "$concurrency")
[ -n "$url" ] && args+=(--url "$url")
exec "$PYTHON" -m ugt_ensemble bench "${args[@]}" "${extra[@]}"
