#!/usr/bin/env bash
# Bring your own model, end to end: make it (a non-UGT recommender, trained briefly, saved as .pt2), build
# the Triton repository from it with the CLI, serve it with the real tritonserver, query it, stop.
# Usage: bash examples/bring_your_own_model/run.sh [WORKDIR]   (from the repository root, after scripts/setup.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python}"
cd "$here"
"$python" make_model.py --out "$work" --train-steps "${TRAIN_STEPS:-100}"
"$python" -m ugt_ensemble build --model "$work/model.pt2" --catalog "$work/items.csv" \
  --max-seq-length 256 --output-dir "$work/repository" --target-server cpu-wheel
bash "$here/../serve_and_query.sh" "$work"
