"""Development tools of ugt-ensemble (dev/, distribution ugt-ensemble-dev); nothing here is needed to build or serve.

- `bench`: the benchmark harness behind `python -m ugt_ensemble bench` and BENCHMARKS.md;
- `naive_peer`: the benchmark's naive baseline model and the hook that `build --naive-peer` calls;
- `reliability`: the suite behind RELIABILITY.md (`python -m ugt_ensemble_dev.reliability`), hostile-input
  generators, raw wire senders and the server fuzz;
- `traffic`: steady background traffic that keeps every answer (tests and the reliability scenarios).
"""
