"""What `stats` prints beside the per-model table: the steps' own metrics (served catalog, stub starts, rule use,
short answers; `runtime.metric_names`) and, for `stats --watch`, the rates between two scrapes."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.runtime import metric_names as names
from ugt_ensemble.serving.metrics import Values, model_counts, model_names, sum_of


@dataclass(frozen=True)
class Rate:
    """One model's traffic between two scrapes (per second; the average latency of the requests in between)."""

    model: str
    requests_s: float
    failures_s: float
    probes_s: float
    avg_ms: float | None


def step_lines(values: Values) -> list[str]:
    """The served catalogs, stub starts, rule use and short answers, one line each (none if not published)."""
    lines = []
    for (name, labels), value in sorted(values.items(), key=lambda kv: sorted(kv[0][1])):
        label = dict(labels)
        if name == names.CATALOG_ITEMS:
            lines.append(f"catalog   {label['model']}: {value:.0f} items, fingerprint {label.get('fingerprint', '?')}")
    starts = {dict(labels)["model"]: v for (name, labels), v in values.items() if name == names.STEP_STARTS}
    if starts:
        told = ", ".join(f"{model} {count:.0f}" for model, count in sorted(starts.items()))
        lines.append(f"starts    {told} (stub starts since the server started: above 1, restarts or heals)")
    answers, short = sum_of(values, names.ANSWERS), sum_of(values, names.SHORT_ANSWERS)
    if answers:
        lines.append(f"answers   {answers:.0f}, of which {short:.0f} short ({short / answers:.1%}: fewer than K items)")
    rules = {rule: sum_of(values, names.RULE_REQUESTS, rule=rule) for rule in names.RULES}
    user = sum_of(values, names.REQUESTS, model=_first_step(values), traffic=names.USER)
    if user:
        told = ", ".join(f"{rule} {count:.0f}" for rule, count in rules.items())
        lines.append(f"rules     {told} (rows of {user:.0f} user requests)")
    return lines


def rates(before: Values, after: Values, seconds: float, ensembles: tuple[str, ...] | list[str]) -> list[Rate]:
    """Per model, what happened between two scrapes `seconds` apart (a model that restarted shows from zero)."""
    result = []
    for model in model_names(after):
        old, new = model_counts(before, model, ensembles), model_counts(after, model, ensembles)
        delta = lambda a, b: max((b or 0.0) - (a or 0.0), 0.0)  # noqa: E731
        answered = delta(old.answered, new.answered)
        duration = delta(old.duration_us, new.duration_us)
        result.append(
            Rate(
                model,
                (delta(old.success, new.success) + delta(old.failure, new.failure)) / seconds,
                delta(old.failure, new.failure) / seconds,
                delta(old.probes, new.probes) / seconds,
                duration / answered / 1000 if answered else None,
            )
        )
    return result


def _first_step(values: Values) -> str:
    """The step that counts rule use (preprocess, whatever its name)."""
    for name, labels in values:
        if name == names.RULE_REQUESTS:
            return dict(labels)["model"]
    return "preprocess"
