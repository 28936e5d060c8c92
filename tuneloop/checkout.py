"""Run a benchmark from the checkout: benchmarks/ is not in the wheel, so it runs as a child."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

CHECKOUT = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, args: list[str]) -> int:
    """`python -m benchmarks.<name> ARGS` with the checkout as working directory; its exit code."""
    if not (CHECKOUT / "benchmarks" / "__init__.py").is_file():
        click.echo(
            f"tuneloop: the benchmarks live in a checkout of the repository, not in the installed "
            f"package ({CHECKOUT} has no benchmarks/); clone it and run `make bench` there.",
            err=True,
        )
        return 2
    command = [sys.executable, "-m", f"benchmarks.{name}", *args]
    return subprocess.run(command, cwd=CHECKOUT, check=False).returncode
