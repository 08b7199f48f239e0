#!/usr/bin/env bash
# Install everything (scripts/setup.sh), build the ensemble if needed, start tritonserver, query sample
# histories, print the recommendations, stop the server. Extra arguments go to `ugt_ensemble demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ugt_ensemble demo "$@"
