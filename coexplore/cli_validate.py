"""``coexplore validate --against maestro|scalesim``: coexplore's cycles over another tool's, per case.

The cases and their reasons live in ``coexplore.sim.fidelity``; this module prints the table, writes
the plot and the JSON, and is called by the ``validate`` command (``coexplore.cli_sim``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from coexplore.cli_common import emit_json, json_ready, versioned
from coexplore.models.ir import CoexploreError


def fidelity_report(
    tool: str, profiles: list[str], reference_dir: str | None, out_dir: str | None, as_json: bool
) -> dict[str, Any]:
    """Run the ``tool`` cases in each profile; print a table (or JSON); write ``fidelity_<tool>.png`` and
    ``.json`` under ``out_dir``. Returns the JSON payload."""
    from coexplore.dataflows.io import get_profile
    from coexplore.sim import fidelity

    cases = fidelity.reference_cases(tool, reference_dir)
    rows = []
    for name in profiles:
        rows += fidelity.run_cases(cases, get_profile(name))
    payload: dict[str, Any] = {
        "against": tool,
        "profiles": profiles,
        "large_ratio": fidelity.LARGE_RATIO,
        "cases": [r.to_dict() for r in rows],
        "summary": fidelity.summary(rows),
    }
    written: list[str] = []
    if out_dir:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CoexploreError(f"--out {out_dir!r}: cannot create the folder ({exc.strerror})") from None
        png = out / f"fidelity_{tool}.png"
        fidelity.plot(rows, png, f"coexplore vs {tool}: cycles ratio per case")
        data = out / f"fidelity_{tool}.json"
        data.write_text(json.dumps(json_ready(versioned(payload)), indent=2, allow_nan=False))
        written = [str(png), str(data)]
        payload["files"] = written
    if as_json:
        emit_json(payload)
        return payload
    _print_table(tool, rows)
    for tier, s in payload["summary"].items():
        click.echo(
            f"{tier}: {s['cases']} cases, geometric-mean ratio {s['geomean_ratio']:.3f} "
            f"(min {s['min_ratio']:.3f}, max {s['max_ratio']:.3f}), "
            f"{s['large']} beyond {fidelity.LARGE_RATIO:g}x"
        )
    if written:
        click.echo(f"written: {', '.join(written)}")
    return payload


def _print_table(tool: str, rows: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"coexplore vs {tool} (ratio = coexplore / {tool}; reasons for ratios beyond 1.25x)", show_lines=True
    )
    for col in ("case", "tier", "profile", tool, "coexplore", "ratio", "reason"):
        table.add_column(
            col,
            justify="right" if col in (tool, "coexplore", "ratio") else "left",
            overflow="fold",
            ratio=6 if col == "reason" else None,
        )
    for r in rows:
        style = "bold red" if r.large else None
        table.add_row(
            r.case.name,
            r.tier,
            r.profile,
            f"{r.case.reference_cycles:,.0f}",
            f"{r.cycles:,.0f}",
            f"{r.ratio:.3f}",
            r.reason or "-",
            style=style,
        )
    Console(width=max(Console().width, 160)).print(table)
