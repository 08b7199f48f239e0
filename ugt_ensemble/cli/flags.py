"""Command-line flags declared once per config field: argparse reads each default from the dataclass,
and the parsed values go back into the same field, so no default is stated twice."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

#: A flag left out on the command line (the config's own default then applies).
UNSET = None


@dataclass(frozen=True)
class Flag:
    """One command-line flag bound to `field` of the config class `owner`.

    `action` "store_true" / "store_false" make a switch that sets the field to True / False.
    `default_text` replaces the dataclass default in the help where a profile decides it.
    """

    name: str
    owner: type
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    action: str | None = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    default_text: str | None = None

    def default(self) -> Any:
        return field_default(self.owner, self.field)

    def add_to(self, parser: argparse._ActionsContainer) -> None:
        shown_default = self.default_text if self.default_text is not None else shown(self.default())
        help_text = self.help if self.action else f"{self.help} (default: {shown_default})"
        options: dict[str, Any] = {"help": help_text, "dest": self.dest, "default": UNSET}
        if self.action:
            options["action"] = self.action
        else:
            options.update(type=self.type, choices=self.choices, metavar=self.metavar)
        parser.add_argument(self.name, **{k: v for k, v in options.items() if v is not None or k == "default"})

    @property
    def dest(self) -> str:
        return f"{self.owner.__name__}.{self.field}"


def given(args: argparse.Namespace, flags: Sequence[Flag], owner: type) -> dict[str, Any]:
    """The fields of `owner` that the command line set (left-out flags are absent)."""
    values = {}
    for flag in flags:
        value = getattr(args, flag.dest, UNSET)
        if flag.owner is owner and value is not UNSET:
            values[flag.field] = value
    return values


def field_default(owner: type, name: str) -> Any:
    """The default of field `name` of the dataclass `owner` (KeyError if it has no such field)."""
    for f in dataclasses.fields(owner):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(f"{owner.__name__} has no field {name!r}")


def shown(value: Any) -> str:
    """A default as the help shows it: "1,2" for a tuple ("none" if empty), "none" for None."""
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)
