"""Pure-numpy logic shared by the client, the benchmark, the tests and the Triton models.

`python -m ugt_ensemble build` copies this package verbatim into each Python-backend model of the
emitted repository as `ugt_runtime`, so the repository runs without ugt-ensemble installed. Keep it
dependent on numpy and the standard library only, with relative imports inside the package.
"""
