#!/usr/bin/env bash
# Interleaved A/B of served repositories with perf_analyzer 2.51 (gRPC, the build's input data).
# Usage: ab.sh ROUNDS LABEL=GRPC_PORT:TOOLS_DIR [LABEL=...]   (each repository already served, e.g. by
#   python -m ugt_ensemble serve --model-repository DIR --grpc-port P --watch-interval 0 --no-request-guard)
# Env: CASES (default "ens:1 ens:8 step:1 step:8"; kinds ens, rules, step), WINDOW_MS (2000), MAX_TRIALS (5).
# Each round runs every case on every repository in turn, so host drift hits both sides alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
libs=$($py - <<'PY'
import pathlib, site
sp = pathlib.Path(site.getsitepackages()[0])
print(":".join(str(p) for p in [sp / "nvidia_pytriton.libs", pathlib.Path("/root/.pyenv/versions/3.11.7/lib"),
                                  sp / "nvidia/cuda_runtime/lib"] if p.exists()))
PY
)
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}"
rounds=$1; shift
cases=${CASES:-"ens:1 ens:8 step:1 step:8"}
for round in $(seq 1 "$rounds"); do
  for case in $cases; do
    kind=${case%%:*}; c=${case##*:}
    for side in "$@"; do
      label=${side%%=*}; rest=${side#*=}; port=${rest%%:*}; tools=${rest#*:}
      case $kind in
        ens) model=ugt_recommend; data=$tools/perf_input_ugt_recommend.json ;;
        rules) model=ugt_recommend; data=$tools/perf_input_ugt_recommend_rules.json ;;
        step) model=ugt_trt; data=$tools/perf_input_ugt_trt.json ;;
      esac
      out=$(.venv/bin/perf_analyzer -m $model -u 127.0.0.1:$port -i grpc --input-data "$data" \
            --concurrency-range "$c" --measurement-interval "${WINDOW_MS:-2000}" --stability-percentage 50 \
            --max-trials ${MAX_TRIALS:-5} --percentile=50 2>&1 || true)
      tput=$(grep -o "Throughput: [0-9.]* infer/sec" <<<"$out" | tail -1 || true)
      p50=$(grep -o "p50 latency: [0-9]* usec" <<<"$out" | tail -1 || true)
      echo "round $round $label $kind c$c: ${tput:-unstable (no result in ${MAX_TRIALS:-5} windows)} $p50"
    done
  done
done
