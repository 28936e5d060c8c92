"""The layout: what the wheel ships, where the benchmarks and the drill live, how they run."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from setuptools import find_packages

from tuneloop import checkout
from tuneloop.cli import main

ROOT = Path(__file__).parents[2]


def test_the_wheel_ships_the_product_and_not_the_benchmarks() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = set(find_packages(where=str(ROOT), include=include))
    assert {"core", "api", "monitor", "retrain", "tuneloop.cli", "tuneloop.drill"} <= shipped
    assert not any(name.split(".")[0] in {"benchmarks", "tests"} for name in shipped)


def test_no_benchmark_code_in_the_product_packages() -> None:
    for package in ("core", "api", "monitor", "retrain", "tuneloop"):
        assert not list((ROOT / package).rglob("bench*.py")), package
    assert len(list((ROOT / "tuneloop").glob("*.py"))) <= 12


def test_tuneloop_bench_runs_the_checkouts_benchmark() -> None:
    # A real child process: the console script hands its arguments to `benchmarks.serving`.
    command = [sys.executable, "-m", "tuneloop.cli", "bench", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert "python -m benchmarks.serving" in done.stdout
    assert "--raw-seconds" in done.stdout and "--concurrency" in done.stdout


def test_tuneloop_bench_without_a_checkout_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(checkout, "CHECKOUT", tmp_path)
    result = CliRunner().invoke(main, ["bench", "--duration", "1"])
    assert result.exit_code == 2
    assert "not in the installed package" in result.output


def test_drill_needs_both_domains_but_its_tools_do_not() -> None:
    result = CliRunner().invoke(main, ["drill", "--shifted", __file__])
    assert result.exit_code == 2 and "Missing option '--reference'" in result.output
    result = CliRunner().invoke(main, ["drill", "data"])
    assert result.exit_code == 2  # the converter's own usage: SRC OUT [DOMAIN ...]


def test_the_worker_registers_every_task_from_the_composition_root(tmp_path: Path) -> None:
    from core.queue import GC_TASK, MONITOR_TASK, REAP_TASK, RETRAIN_TASK
    from core.settings import Settings
    from tuneloop.cli.loop import celery_app

    app = celery_app(Settings(home=tmp_path))
    assert {MONITOR_TASK, RETRAIN_TASK, REAP_TASK, GC_TASK} <= set(app.tasks)
    assert (
        not (ROOT / "monitor" / "tasks.py").exists()
        and not (ROOT / "retrain" / "tasks.py").exists()
    )


def test_plotting_is_an_extra_that_make_install_installs() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("matplotlib") for d in config["dependencies"])
    assert any(d.startswith("matplotlib") for d in config["optional-dependencies"]["reports"])
    assert "-e '.[dev,reports]'" in (ROOT / "Makefile").read_text()


def test_without_matplotlib_the_drill_refuses_a_report_before_it_runs(
    tmp_path: Path, monkeypatch
) -> None:
    from tuneloop.drill import curve, plotting

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    argv = ["drill", "--reference", __file__, "--shifted", __file__]
    result = CliRunner().invoke(main, [*argv, "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "pip install 'tuneloop[reports]'" in result.output
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, before any training
        curve.main([str(tmp_path), *argv[1:], "--plot", str(tmp_path / "c.png")])
    assert exited.value.code == 2
    with pytest.raises(plotting.PlottingMissing, match="tuneloop\\[reports\\]"):
        plotting.pyplot()
