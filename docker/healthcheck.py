"""Container health check: tritonserver is ready AND a real inference through the ensemble succeeds.

Readiness alone stays 200 after a Python-backend stub dies, while every request then fails; so this
also sends an empty history `[]` to the ensemble over HTTP. Standard library only (it runs with the
Python of NVIDIA's image as well). Environment: UGT_ENSEMBLE (default ugt_recommend), UGT_HTTP_PORT
(default 8000). Exit status 0: healthy; 1: not.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

BODY = {"inputs": [{"name": "HISTORY", "shape": [1, 1], "datatype": "BYTES", "data": ["[]"]}]}


def healthy(base: str, ensemble: str, timeout_s: float = 8.0) -> bool:
    """True when /v2/health/ready answers 200 and the ensemble returns ITEM_IDS for `[]`."""
    with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=timeout_s) as ready:
        if ready.status != 200:
            return False
    request = urllib.request.Request(
        f"{base}/v2/models/{ensemble}/infer",
        data=json.dumps(BODY).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        outputs = json.load(answer).get("outputs", [])
    return any(output.get("name") == "ITEM_IDS" for output in outputs)


def main() -> int:
    base = f"http://127.0.0.1:{os.environ.get('UGT_HTTP_PORT', '8000')}"
    try:
        ok = healthy(base, os.environ.get("UGT_ENSEMBLE", "ugt_recommend"))
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
