"""Run the ``coexplore`` CLI in-process (click's CliRunner) with the fields of a finished process.

Starting a Python process per bad-input case costs ~1 s of imports each; the in-process run checks
the same things: the exit code, stderr, and that no exception escaped the command (an escaped one
is rendered as a traceback into ``stderr``, so ``"Traceback" not in stderr`` still catches it).
``tests/test_cli_errors.py::test_a_real_process_prints_one_line_and_no_traceback`` keeps the check
at the process level.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from click.testing import CliRunner

from coexplore.cli import cli


@dataclass(frozen=True, slots=True)
class Finished:
    """What ``subprocess.run(..., capture_output=True, text=True)`` would give."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Finished:
    """``coexplore ARGS`` in this process."""
    result = CliRunner().invoke(cli, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        stderr += "Traceback (escaped the command):\n" + "".join(traceback.format_exception(exc))
    return Finished(result.exit_code, result.stdout, stderr)
