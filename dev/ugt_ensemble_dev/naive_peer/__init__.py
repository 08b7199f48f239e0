"""The benchmark's naive peer: one Triton Python-backend model (`model.py`) that parses, runs the reference UGT
eagerly and decodes, request by request, with no dynamic batching. `hook.NAIVE_PEER` is what `build --naive-peer`
writes; the package's `__init__` stays empty so that the model imports only what it needs inside Triton."""
