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
            options.update(type=self.type, choices=self.choices, metavar=self.metavar or self.value_name())
        parser.add_argument(self.name, **{k: v for k, v in options.items() if v is not None or k == "default"})

    def value_name(self) -> str | None:
        """The metavar that `--help` shows when none is given (`value_name`); None for choices."""
        return None if self.choices else value_name(self.field, self.type)

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


def value_name(field: str, kind: Callable[[str], Any] | None) -> str:
    """What a flag's value is, for `--help`: FILE, DIR, N, X, SECONDS, PORT, IDS, N,N,..., else the field's name
    in capitals, never a dest such as "EXPORTCONFIG.CATALOG_PATH"."""
    name = field.rsplit(".", 1)[-1].lower()
    kind_name = getattr(kind, "__name__", "")
    if name.endswith(("_dir", "repository", "output_dir")):
        return "DIR"
    if kind_name in ("Path", "PurePath") or name.endswith(("_path", "_file", "checkpoint", "catalog", "onnx")):
        return "FILE"
    if name.endswith("port"):
        return "PORT"
    if kind_name in ("int", "float") and name.endswith(("timeout", "interval", "window", "_s")):
        return "SECONDS"
    if kind_name == "int":
        return "N"
    if kind_name == "float":
        return "X"
    if kind_name == "int_list":
        return "IDS" if name in ("gpus", "device_ids") else "N,N,..."
    return name.upper()


def name_values(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every option of `parser` and its subcommands that takes a value and has no metavar or choices one
    from `value_name` (argparse's default is the dest in capitals); returns `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                name_values(sub)
        elif action.option_strings and action.nargs != 0 and action.metavar is None and not action.choices:
            action.metavar = value_name(action.dest, action.type)
    return parser
