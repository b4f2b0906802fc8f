"""The ``coexplore`` command: a click group whose commands live in small per-topic modules.

Command modules import only click at the top; heavy libraries (torch, Pyomo, Amaranth) load inside
the command that needs them, so ``coexplore evaluate`` starts fast.
"""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command; a module that does not exist yet is skipped.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("coexplore.cli_eval", "templates"),
    ("coexplore.cli_eval", "layers"),
    ("coexplore.cli_eval", "evaluate"),
    ("coexplore.cli_eval", "sweep"),
    ("coexplore.cli_eval", "tour"),
    ("coexplore.cli_sim", "simulate"),
    ("coexplore.cli_sim", "validate"),
    ("coexplore.cli_system", "system"),
    ("coexplore.cli_rtl", "rtl"),
    ("coexplore.cli_rtl", "verify"),
    ("coexplore.cli_search", "search"),
    ("coexplore.cli_search", "demo"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coexplore")
def cli() -> None:
    """Hardware/DNN co-design: workloads, dataflow templates, simulators, heterogeneous systems, RTL."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        command = getattr(module, attr, None)
        if command is not None:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="coexplore")


if __name__ == "__main__":
    main()
