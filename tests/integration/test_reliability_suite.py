"""The reliability suite end to end, every scenario for seconds (`--short`): what scripts/reliability.sh runs."""

from ugt_ensemble_dev.reliability.report import write_report
from ugt_ensemble_dev.reliability.suite import Durations, run_suite


def test_the_short_suite_meets_every_expectation_and_writes_the_report(built, tmp_path):
    config, result = built
    sections, machine = run_suite(tmp_path / "work", Durations.short(), result.repository)
    failed = [f"{s.title}:\n{s.text}" for s in sections if not s.ok]
    assert not failed, "\n\n".join(failed)
    titles = " ".join(s.title for s in sections).lower()
    for scenario in ("poison", "soak", "rollout", "fuzz", "kill", "stop"):
        assert scenario in titles, titles
    command = "python -m ugt_ensemble_dev.reliability --short"
    report = write_report(tmp_path / "RELIABILITY.md", sections, machine, command)
    text = report.read_text()
    assert text.startswith("# Reliability") and "NOT met" not in text and machine["cpu"] in text
