#!/usr/bin/env bash
# Serve WORK/repository with the real tritonserver on free loopback ports, query it with the histories in
# WORK/histories.jsonl, then stop the server. Shared by the examples' run.sh scripts.
# Usage: bash examples/serve_and_query.sh WORK
set -euo pipefail
work="$1"
python="${PYTHON:-python}"
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
