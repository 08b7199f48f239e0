#!/usr/bin/env bash
# Train your own recommender on an interactions file and a catalog, build the Triton repository from it,
# serve it with the real tritonserver, query it, stop.
# Usage (from the repository root, after scripts/setup.sh and `. .venv/bin/activate`):
#   bash examples/train_your_own/run.sh [WORKDIR [INTERACTIONS.csv ITEMS.csv]]
# Without the two files it makes a small synthetic pair (make_data.py). TRAIN_ARGS passes options to
# train.py, e.g. TRAIN_ARGS="--epochs 5 --max-seq-length 100 --event-map addtocart=cart", and BUILD_ARGS to
# build, e.g. BUILD_ARGS="--set-column in_stock --set-column category" (the catalog's item-set columns).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mkdir -p "${1:-$(mktemp -d)}" && cd "${1:-.}" && pwd)"
python="${PYTHON:-python}"
if [ $# -ge 3 ]; then
  interactions="$(realpath "$2")" items="$(realpath "$3")"
else
  "$python" "$here/make_data.py" --out "$work"
  interactions="$work/interactions.csv" items="$work/items.csv"
fi
max_length=$("$python" -c "import sys; a=sys.argv[1:]; print(a[a.index('--max-seq-length')+1] if '--max-seq-length' in a else 64)" ${TRAIN_ARGS:-})
(cd "$here" && "$python" train.py --interactions "$interactions" --catalog "$items" --out "$work" ${TRAIN_ARGS:-})
"$python" -m ugt_ensemble build --model "$work/model.pt2" --catalog "$items" --max-seq-length "$max_length" \
  --output-dir "$work/repository" --target-server cpu-wheel ${BUILD_ARGS:-}
bash "$here/../serve_and_query.sh" "$work"
