"""Reliability tooling: the suite behind RELIABILITY.md (`suite`, `scenarios`; run it with
`python -m ugt_ensemble_dev.reliability`), hostile-input generators (`fuzz`), raw wire senders (`raw`), and a fuzz
driver that runs them against a live tritonserver (`fuzz_server`).

Nothing here is imported by the served models; `hypothesis` is needed only by `fuzz.case_strategy`.
"""
