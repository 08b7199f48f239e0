"""Reliability tooling: hostile-input generators (`fuzz`), raw wire senders (`raw`), and a fuzz
driver that runs them against a live tritonserver (`fuzz_server`).

Nothing here is imported by the served models; `hypothesis` is needed only by `fuzz.case_strategy`.
"""
