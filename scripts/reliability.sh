#!/usr/bin/env bash
# Regenerate RELIABILITY.md: install (scripts/setup.sh), build a CPU repository, serve it with the watchdog,
# and run every reliability scenario (a 10-minute soak, overload, bursts, the queue-policy trade-off, a
# rollout and rollback, 10,000 fuzzed requests, kill -9 of each stub). Takes ~25 minutes on 2 cores; run it
# on a quiet machine. Extra arguments go to `python -m ugt_ensemble_dev.reliability` (e.g. --short).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m ugt_ensemble_dev.reliability --output RELIABILITY.md "$@"
