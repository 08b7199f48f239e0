"""`--help` names what each value is (FILE, DIR, N, IDS, ...), never a dest such as `EXPORTCONFIG.CATALOG_PATH`
(the real CLI, as a user runs it)."""

import re
import subprocess
import sys

import pytest

from ugt_ensemble.cli import build_parser

#: A metavar argparse derived from a dotted dest ("BUILDCONFIG.SEED") or from a config field.
DEST_LIKE = re.compile(r"--[a-z-]+ [A-Z_]*CONFIG\.[A-Z_]+|--[a-z-]+ [A-Z]+\.[A-Z_]+")


def _usage(command: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "ugt_ensemble", command, "--help"], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("build", ["--catalog FILE", "--seed N", "--gpus IDS", "--output-dir DIR", "--max-batch-size N",
                   "--preferred-batch-sizes N,N,...", "--score-atol X", "--model FILE", "--ensemble-name MODEL_NAME"]),
        ("deploy", ["--model-repository DIR", "--catalog FILE", "--checkpoint FILE", "--version N"]),
        ("serve", ["--model-repository DIR", "--grpc-port PORT", "--heal-timeout SECONDS", "--log-file FILE"]),
        ("versions", ["--keep N", "--operator-key-file FILE"]),
    ],
)  # fmt: skip
def test_help_shows_values_not_dests(command, expected):
    usage = _usage(command)
    assert not DEST_LIKE.search(usage), DEST_LIKE.findall(usage)
    for flag in expected:
        assert flag in usage, (flag, usage[:3000])


def test_no_option_of_any_command_shows_a_dotted_dest():
    def walk(parser):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for sub in action.choices.values():
                    yield from walk(sub)
            elif action.option_strings and action.nargs != 0:
                yield action

    shown = [(a.option_strings[0], a.metavar) for a in walk(build_parser()) if not a.choices]
    assert [(flag, metavar) for flag, metavar in shown if metavar is None or re.search(r"[A-Z]\.[A-Z]", metavar)] == []
