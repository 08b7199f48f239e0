"""The root of every error this package raises, the errors a request can earn, and short messages.

`UgtEnsembleError` lives here, in the numpy-only runtime that is copied into each emitted model, so
that runtime errors (a malformed request, a bad catalog index) derive from it as well;
`ugt_ensemble.errors` adds the build-time kinds. A `RequestError` is the client's fault (Triton status
INVALID_ARG, HTTP 400); anything else raised
while answering a request is a server fault (INTERNAL, HTTP 500). Messages never echo a client's
value whole: `clip` cuts it and states its full length, so a 16 KB event type cannot overflow
gRPC's metadata limit or come back as a 16 KB error body.
"""

from __future__ import annotations

import json

#: Longest excerpt of a client's value quoted in an error message (characters).
QUOTE_LIMIT = 100
#: Triton error codes, by their names in `triton_python_backend_utils.TritonError`.
CLIENT_ERROR = "INVALID_ARG"
SERVER_ERROR = "INTERNAL"


class UgtEnsembleError(Exception):
    """Root of all ugt-ensemble errors: the CLI prints them as one line and exits non-zero."""


class ConfigError(UgtEnsembleError, ValueError):
    """A configuration value is invalid (names the field and the allowed values)."""


class RequestError(UgtEnsembleError, ValueError):
    """The client's request is invalid; the message is returned to that client."""


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text`, or its first `limit` characters and its full length when it is longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A client's value as JSON, clipped (for error messages)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, limit)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(message, Triton error code) for an exception raised while answering one request.

    The message is always valid UTF-8: a client's lone surrogate ("\\ud800") comes back escaped, since
    Triton's error type (a C++ string) refuses text that cannot be encoded.
    """
    if isinstance(exc, RequestError):
        message, code = str(exc), CLIENT_ERROR
    else:
        message, code = f"internal error: {type(exc).__name__}: {exc}", SERVER_ERROR
    return clip(message.encode("utf-8", "backslashreplace").decode("utf-8"), 4 * QUOTE_LIMIT), code
