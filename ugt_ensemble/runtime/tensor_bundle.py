"""One tensor for many: the arrays preprocess hands a Python-backend model step, as one uint8 tensor.

Each tensor between two Python steps costs a shared-memory buffer and its bookkeeping in the stubs and in the
ensemble scheduler, whatever its size: the six encoder tensors and four rule tensors travel as one bundle
instead (BENCHMARKS.md). Row r of a bundle holds a header (the format version, the number of arrays, each
array's dtype and per-row shape) and then row r of every array, each padded to 8 bytes; all rows share the
header. `unbundle_rows` checks all of it against what the receiver expects, so a bundle sent straight to the
model step is bounded like any other input.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .contract import ENCODER_DTYPES, ENCODER_INPUTS, RULE_DTYPES, RULE_NAMES
from .errors import RequestError

#: The bundle's tensor name, in preprocess's outputs and the model step's inputs.
BUNDLE = "ugt_bundle"
VERSION = 1
_CODES = {np.dtype(np.int64): 1, np.dtype(np.float32): 2, np.dtype(np.bool_): 3}
_DTYPES = {code: dtype for dtype, code in _CODES.items()}
_MAX_DIMS = 2  # per-row dims of an array (the encoder tensors have 1, the rule lists 2)
_WORDS_PER_ARRAY = 2 + _MAX_DIMS  # dtype code, number of dims, the dims


def header_bytes(arrays: int) -> int:
    """Bytes of a bundle row's header for `arrays` arrays."""
    return 8 * (2 + _WORDS_PER_ARRAY * arrays)


def bundle_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 [rows, width]: every array (each with the same number of rows, at most 2 dims past the first)."""
    rows = len(arrays[0])
    header: list[int] = [VERSION, len(arrays)]
    parts = []
    for array in arrays:
        shape = array.shape[1:]
        if len(array) != rows or len(shape) > _MAX_DIMS or array.dtype not in _CODES:
            raise ValueError(f"cannot bundle a {array.dtype} {list(array.shape)} array with {rows} rows")
        header += [_CODES[array.dtype], len(shape), *shape, *[0] * (_MAX_DIMS - len(shape))]
        flat = np.ascontiguousarray(array).reshape(rows, -1).view(np.uint8)
        parts.append(flat)
        if flat.shape[1] % 8:
            parts.append(np.zeros((rows, -flat.shape[1] % 8), dtype=np.uint8))
    head = np.broadcast_to(np.array(header, dtype=np.int64).view(np.uint8), (rows, 8 * len(header)))
    return np.concatenate([head, *parts], axis=1)


def unbundle_rows(bundle: np.ndarray, dtypes: Mapping[str, type]) -> dict[str, np.ndarray]:
    """name -> array [rows, ...] of a bundle holding the arrays of `dtypes` (name -> dtype, in order).

    Raises `RequestError` naming what does not match: the tensor's type or shape, the header, a dtype, a size.
    """
    if bundle.dtype != np.uint8 or bundle.ndim != 2:
        raise RequestError(f"{BUNDLE}: expected a uint8 [rows, bytes] tensor, got {bundle.dtype} {list(bundle.shape)}")
    rows, width = bundle.shape
    names = list(dtypes)
    head_bytes = header_bytes(len(names))
    if rows == 0 or width < head_bytes:
        raise RequestError(f"{BUNDLE}: {width} bytes a row, shorter than the header of {len(names)} arrays")
    head = np.ascontiguousarray(bundle[:, :head_bytes])
    if rows > 1 and np.any(head[1:] != head[0]):
        raise RequestError(f"{BUNDLE}: the rows' headers differ (every row of a request has the same shapes)")
    words = head[0].view(np.int64).tolist()
    if words[:2] != [VERSION, len(names)]:
        raise RequestError(f"{BUNDLE}: header {words[:2]}, expected version {VERSION} with {len(names)} arrays")
    arrays, offset = {}, head_bytes
    for i, name in enumerate(names):
        code, ndim, *dims = words[2 + _WORDS_PER_ARRAY * i : 2 + _WORDS_PER_ARRAY * (i + 1)]
        dtype = _DTYPES.get(code)
        wrong_dims = not 0 <= ndim <= _MAX_DIMS or any(d < 0 for d in dims[:ndim])
        if dtype is None or dtype.type is not dtypes[name] or wrong_dims:
            raise RequestError(f"{BUNDLE}: {name} is declared as code {code} with dims {dims[:ndim]}, expected "
                               f"{np.dtype(dtypes[name])} with at most {_MAX_DIMS} non-negative dims")  # fmt: skip
        shape = tuple(dims[:ndim])
        size = math.prod(shape) * dtype.itemsize
        if offset + size > width:
            raise RequestError(f"{BUNDLE}: {name} {list(shape)} runs past the row's {width} bytes")
        part = np.ascontiguousarray(bundle[:, offset : offset + size])
        arrays[name] = part.view(dtype).reshape(rows, *shape)
        offset += size + (-size % 8)
    if offset != width:
        raise RequestError(f"{BUNDLE}: {width - offset} bytes a row past its last array")
    return arrays


def step_names(with_rules: bool) -> tuple[str, ...]:
    """The arrays a bundle for the model step holds, in order: the encoder tensors, then the rule tensors of a
    model that honours the rules in its search."""
    return ENCODER_INPUTS + (RULE_NAMES if with_rules else ())


def bundle_step_inputs(arrays: Mapping[str, np.ndarray], with_rules: bool) -> dict[str, np.ndarray]:
    """{BUNDLE: ...} of what preprocess packed for one request (`step_names` of `arrays`)."""
    return {BUNDLE: bundle_rows([arrays[name] for name in step_names(with_rules)])}


def step_inputs(arrays: Mapping[str, np.ndarray], with_rules: bool) -> Mapping[str, np.ndarray]:
    """The model step's input arrays of one request: unbundled when it sent `BUNDLE`, else as sent."""
    if BUNDLE not in arrays:
        return arrays
    if len(arrays) > 1:
        raise RequestError(f"send {BUNDLE} alone or the step's tensors, not both (got {sorted(arrays)})")
    dtypes = {name: {**ENCODER_DTYPES, **RULE_DTYPES}[name] for name in step_names(with_rules)}
    return unbundle_rows(arrays[BUNDLE], dtypes)
