#!/usr/bin/env bash
# PyTorch -> ONNX -> TensorRT -> Triton repository, as in the seeds: a thin wrapper over
# `python -m ugt_ensemble build` (and `serve`). Environment:
#   MODEL_NAME        ensemble name                         (default: ugt_recommend)
#   PRECISION         fp32 | fp16 | int8 (TensorRT engine)  (default: fp16)
#   MAX_BATCH_SIZE    Triton max_batch_size / export range  (default: 64)
#   CHECKPOINT_PATH   model weights (torch.load(weights_only=True)); unset: seeded initialisation
#   MODEL_REPOSITORY  where the repository is written       (default: ensemble)
#   CATALOG_PATH      catalog CSV/Parquet; unset: synthetic catalog
# Flags:
#   --skip-export   reuse $MODEL_REPOSITORY/ugt_trt/1/model.onnx instead of exporting again (validated again)
#   --skip-trt      no TensorRT engine: ONNX Runtime in a Python-backend model step (fp32, runs on CPU)
#   --start-server  serve the repository afterwards (Ctrl-C stops it)
# Other arguments go to `ugt_ensemble build`. Run scripts/setup.sh first (or use .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL_NAME=${MODEL_NAME:-ugt_recommend}
PRECISION=${PRECISION:-fp16}
MAX_BATCH_SIZE=${MAX_BATCH_SIZE:-64}
MODEL_REPOSITORY=${MODEL_REPOSITORY:-ensemble}
skip_export=0; skip_trt=0; start_server=0; extra=()
for arg in "$@"; do
  case "$arg" in
    --skip-export) skip_export=1 ;;
    --skip-trt) skip_trt=1 ;;
    --start-server) start_server=1 ;;
    *) extra+=("$arg") ;;
  esac
done
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
args=(--output-dir "$MODEL_REPOSITORY" --ensemble-name "$MODEL_NAME" --max-batch-size "$MAX_BATCH_SIZE")
if [ "$skip_trt" = 1 ]; then
  args+=(--engine onnxruntime --precision fp32)
else
  args+=(--engine tensorrt --precision "$PRECISION")
fi
[ -n "${CHECKPOINT_PATH:-}" ] && args+=(--checkpoint "$CHECKPOINT_PATH")
[ -n "${CATALOG_PATH:-}" ] && args+=(--catalog "$CATALOG_PATH")
if [ "$skip_export" = 1 ]; then
  onnx=$(ls "$MODEL_REPOSITORY"/*/1/model.onnx 2>/dev/null | head -n 1 || true)
  [ -n "$onnx" ] || { echo "--skip-export: no model.onnx under $MODEL_REPOSITORY; build once without it" >&2; exit 2; }
  reuse="${TMPDIR:-/tmp}/ugt-export-reuse"
  cp "$onnx" "$reuse.onnx"
  args+=(--onnx "$reuse.onnx")
  # the reference UGT it came from (architecture from the manifest), so the reused file is validated again
  if [ -z "${CHECKPOINT_PATH:-}" ]; then
    "$PYTHON" -c "import json,sys; m=json.load(open(sys.argv[1])); json.dump(m['model_config'], open(sys.argv[2], 'w'))" \
      "$MODEL_REPOSITORY/ugt_build.json" "$reuse.json"
    args+=(--model-config "$reuse.json")
  fi
fi
"$PYTHON" -m ugt_ensemble build "${args[@]}" "${extra[@]}"
if [ "$start_server" = 1 ]; then
  exec "$PYTHON" -m ugt_ensemble serve --model-repository "$MODEL_REPOSITORY" --model-name "$MODEL_NAME"
fi
