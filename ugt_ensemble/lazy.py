"""Lazy public names: a package's `__getattr__` that imports a name's module on first use, so importing the
package (and the command line) stays quick."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """`__getattr__` for `package`: name -> module path (relative to `package` when it starts with '.')."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = names[name]
        return getattr(importlib.import_module(package + module if module.startswith(".") else module), name)

    return __getattr__
