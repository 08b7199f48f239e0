#!/usr/bin/env bash
# Install everything (scripts/setup.sh), then run the whole test suite. The integration tests start a
# real tritonserver on free loopback ports and stop it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest tests "$@"
