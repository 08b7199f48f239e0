"""The project's own metrics on Triton's /metrics (published by the Python steps, `step_metrics`), and the
request parameter that marks a health probe. Plain names only: the client, `stats`, the dashboard and the
alert rules import them without Triton's Python-backend module.

Every series carries the labels `model` and `version` (the step and the repository version it serves).
"""

from __future__ import annotations

import json

#: Request parameter of a health probe (`{"ugt_probe": true}`): the watchdog and the Kubernetes liveness probe
#: send it; Triton forwards an ensemble request's parameters to every step, which count the request apart.
PROBE_PARAMETER = "ugt_probe"

#: Requests a step received, `traffic="user"` or `"probe"` (counter).
REQUESTS = "ugt_requests_total"
#: Requests a step answered with an error, by Triton error code (counter; Triton 2.51 counts them as successes).
FAILURES = "ugt_request_failure"
#: User requests that used a business rule, `rule="exclude"|"sets"|"exclude_history"` (preprocess; counter).
RULE_REQUESTS = "ugt_rule_requests_total"
#: Answers (one per history) and answers holding fewer than K items (postprocess, user traffic; counters).
ANSWERS = "ugt_answers_total"
SHORT_ANSWERS = "ugt_short_answers_total"
#: Items of the catalog a step serves, labelled with the catalog's `fingerprint` (postprocess; gauge).
CATALOG_ITEMS = "ugt_catalog_items"
#: initialize() calls of a step's stub since the server started, and the time of the last (a restart or a heal
#: reloads the step: counter; gauge, seconds since the epoch).
STEP_STARTS = "ugt_step_starts_total"
STEP_START_TIME = "ugt_step_start_time_seconds"

USER, PROBE = "user", "probe"
#: What Triton 2.51 adds to `nv_inference_request_failure{model=<ensemble>}` per refused ensemble request
#: (measured: 5 refused requests -> 10, reason OTHER): reports halve it.
ENSEMBLE_FAILURE_COUNT = 2
RULES = ("exclude", "sets", "exclude_history")


def is_probe(parameters: str | dict | None) -> bool:
    """Whether a request's parameters (Python backend: `request.parameters()`, a JSON object) mark a probe."""
    if not parameters:
        return False
    try:
        values = json.loads(parameters) if isinstance(parameters, str) else parameters
    except ValueError:
        return False
    value = values.get(PROBE_PARAMETER) if isinstance(values, dict) else None
    return value is True or (isinstance(value, str) and value.lower() == "true")
