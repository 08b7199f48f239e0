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
"$python" -m ugt_ensemble serve --model-repository "$work/repository" --http-port 0 --grpc-port 0 \
  --metrics-port 0 --log-file "$work/server.log" > "$work/serve.out" &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "^Serving" "$work/serve.out" 2>/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.out"; exit 1; }
  sleep 0.5
done
url=$(sed -n 's/.*gRPC \([0-9.:]*\),.*/\1/p' "$work/serve.out")
"$python" -m ugt_ensemble infer --url "$url" --file "$work/histories.jsonl" --top 5
echo "Served $work/model.pt2 from $work/repository at $url"
