#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, measure the serving path and write the "GPU check" section
# of BENCHMARKS.md (between its markers; a rerun replaces it).
# - With TensorRT (and a tritonserver with the tensorrt backend on PATH, e.g. NVIDIA's container): build
#   `--engine tensorrt` in each precision (fp32, fp16, int8 with calibration), serve each, run
#   `bench --perf-analyzer` per history length and concurrency, and read GPU utilisation and memory
#   from Triton's metrics (nv_gpu_utilization, nv_gpu_memory_used_bytes).
# - Without TensorRT: time the model step with PyTorch on CUDA (scripts/gpu_check_torch.py), and say so.
# Without a GPU it exits 3 with one line; argument errors exit 2 with one line.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: bash scripts/gpu_check.sh [options]

  --batches LIST        concurrencies (requests in flight; the dynamic batcher batches them), or rows per
                        call without TensorRT (default: 1,8,16,32,64)
  --lengths LIST        history lengths (default: 32,128,512,1024)
  --precisions LIST     TensorRT precisions, from fp32,fp16,int8 (default: all three)
  --calibration FILE    int8: one JSON history per line (default: synthetic histories)
  --duration SECONDS    seconds per bench run (default: 5)
  --work-dir DIR        repositories and raw results (default: bench-results/gpu-check)
  --output FILE         the Markdown file whose GPU section is written (default: BENCHMARKS.md)
  -h, --help            this help

Targets (the seeds'): P99 < 30 ms at batch 64 and history length 512; GPU utilisation > 80 %.
Environment: PYTHON (default: .venv/bin/python, else python3), NVIDIA_SMI (default: nvidia-smi).
EOF
}
fail() { echo "gpu_check.sh: $1" >&2; exit "${2:-2}"; }
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || fail "$1 needs a value (see --help)"; }

BATCHES=1,8,16,32,64 LENGTHS=32,128,512,1024 PRECISIONS=fp32,fp16,int8 CALIBRATION="" DURATION=5
WORK=bench-results/gpu-check OUTPUT=BENCHMARKS.md
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --batches) need_value "$@"; BATCHES=$2; shift 2 ;;
    --lengths) need_value "$@"; LENGTHS=$2; shift 2 ;;
    --precisions) need_value "$@"; PRECISIONS=$2; shift 2 ;;
    --calibration) need_value "$@"; CALIBRATION=$2; shift 2 ;;
    --duration) need_value "$@"; DURATION=$2; shift 2 ;;
    --work-dir) need_value "$@"; WORK=$2; shift 2 ;;
    --output) need_value "$@"; OUTPUT=$2; shift 2 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done
for pair in "--batches:$BATCHES" "--lengths:$LENGTHS"; do
  [[ ${pair#*:} =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || fail "${pair%%:*}: expected positive integers like 1,8,64, got '${pair#*:}'"
done
[[ $PRECISIONS =~ ^(fp32|fp16|int8)(,(fp32|fp16|int8))*$ ]] || fail "--precisions: use fp32, fp16, int8, got '$PRECISIONS'"
[[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "--duration: expected seconds, got '$DURATION'"
[ -z "$CALIBRATION" ] || [ -f "$CALIBRATION" ] || fail "--calibration: no file $CALIBRATION"

GPU=$("${NVIDIA_SMI:-nvidia-smi}" --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1) || GPU=""
[ -n "$GPU" ] || fail "no NVIDIA GPU here (nvidia-smi lists none); nothing was measured" 3

PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
"$PYTHON" -c "import ugt_ensemble" 2>/dev/null || fail "$PYTHON cannot import ugt_ensemble (pip install -e '.[serve,bench]')" 2
mkdir -p "$WORK"
SERVE_PID="" SAMPLER_PID=""
cleanup() {
  for pid in $SAMPLER_PID $SERVE_PID; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  SERVE_PID="" SAMPLER_PID=""
}
trap cleanup EXIT

tensorrt_mode() {
  "$PYTHON" -c "import tensorrt" 2>/dev/null || return 1
  local server; server=$(command -v tritonserver) || return 1
  [ -d "$(dirname "$server")/../backends/tensorrt" ]
}

free_ports() { "$PYTHON" -c "from ugt_ensemble.server import Ports; p = Ports.free(); print(p.http, p.grpc, p.metrics)"; }

wait_ready() {  # $1: http port; fails if the server exits first
  "$PYTHON" - "$1" "$SERVE_PID" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(900):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited before it was ready")
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit("the server was not ready after 15 minutes")
PY
}

measure_precision() {  # $1: precision; builds, serves, benches every (length, concurrency)
  local precision=$1 repo="$WORK/ensemble-$1" http grpc metrics
  local build=(-m ugt_ensemble build --target-server ngc --engine tensorrt --precision "$precision" --output-dir "$repo")
  [ "$precision" != int8 ] || [ -z "$CALIBRATION" ] || build+=(--calibration-histories "$CALIBRATION")
  echo "== $precision: building $repo"
  "$PYTHON" "${build[@]}" -q || { NOTES+=("$precision: the TensorRT build failed (see the output above)"); return 0; }
  read -r http grpc metrics < <(free_ports)
  "$PYTHON" -m ugt_ensemble serve --model-repository "$repo" --http-port "$http" --grpc-port "$grpc" \
    --metrics-port "$metrics" --model-control none --watch-interval 0 --log-file "$WORK/tritonserver-$precision.log" &
  SERVE_PID=$!
  wait_ready "$http" || { NOTES+=("$precision: the server did not start ($WORK/tritonserver-$precision.log)"); cleanup; return 0; }
  "$PYTHON" scripts/gpu_check_report.py sample "http://127.0.0.1:$metrics/metrics" "$WORK/metrics-$precision.jsonl" &
  SAMPLER_PID=$!
  local length concurrency run
  for length in ${LENGTHS//,/ }; do
    for concurrency in ${BATCHES//,/ }; do
      run="$WORK/bench/$precision/L$length-c$concurrency"
      mkdir -p "$run"
      echo "== $precision: history length $length, concurrency $concurrency"
      date +%s.%N > "$run/start"
      "$PYTHON" -m ugt_ensemble bench --model-repository "$repo" --url "127.0.0.1:$grpc" --perf-analyzer \
        --concurrency "$concurrency" --history-lengths "$length" --duration "$DURATION" --output-dir "$run" -q \
        || echo "warning: bench failed at length $length, concurrency $concurrency" >&2
      date +%s.%N > "$run/end"
    done
  done
  cleanup
}

NOTES=()
rm -rf "$WORK/bench" "$WORK"/metrics-*.jsonl
if tensorrt_mode; then
  MODE=tensorrt
  NOTES+=("TensorRT $("$PYTHON" -c 'import tensorrt; print(tensorrt.__version__)'), served by $(command -v tritonserver)")
  for precision in ${PRECISIONS//,/ }; do measure_precision "$precision"; done
else
  MODE=torch
  NOTES+=("TensorRT (or a tritonserver with the tensorrt backend) is missing here: measured with $("$PYTHON" -c 'import torch; print("PyTorch", torch.__version__)' 2>/dev/null || echo PyTorch) on CUDA instead")
  echo "== no TensorRT: timing the model step with PyTorch on CUDA"
  "$PYTHON" scripts/gpu_check_torch.py --batches "$BATCHES" --lengths "$LENGTHS" --output "$WORK/torch.json"
fi
note_args=()
for note in "${NOTES[@]}"; do note_args+=(--note "$note"); done
"$PYTHON" scripts/gpu_check_report.py section --mode "$MODE" --work "$WORK" --output "$OUTPUT" --gpu "$GPU" "${note_args[@]}"
