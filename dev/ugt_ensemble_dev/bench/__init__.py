"""The benchmark harness behind `python -m ugt_ensemble bench` (`cli`, loaded by the product's
`ugt_ensemble.cli.dev_commands`): targets and workloads, perf_analyzer runs, CPU accounting, reports, the suite
behind BENCHMARKS.md and `--tune`. Its load client is the product's (`ugt_ensemble.client.load`)."""
