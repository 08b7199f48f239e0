"""Triton Python-backend adapters, copied into the emitted repository (never imported here).

`build` copies `<step>.py` to `<model>/1/model.py`, `triton_io.py` beside it, and the
`ugt_ensemble.runtime` package as `ugt_runtime/`. Each file is a thin adapter: parsing, packing,
inference and decoding live in the runtime, where they are unit-tested without a server.
"""
