"""The CLI's progress display: a bar on a terminal, whole lines every few seconds in a log; and
the long commands (init --data, retrain --wait) that draw it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core.states import RunState
from tests.factories import run_record
from tuneloop.bootstrap import InitResult
from tuneloop.cli import loop, main, progress
from tuneloop.cli.progress import Bar, Steps, training_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def status(line: str) -> str:
    """What a progress line says after the counts: `... [00:04<00:08,  4.00s/step, vacuum]`."""
    found = re.search(r"(?:step/s|s/step), (.*)\]$", line)
    assert found, line
    return found.group(1)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_whole_line_every_interval_and_one_at_the_end() -> None:
    log, clock = io.StringIO(), Clock()
    bar = Bar("drill", total=300, unit="pred", stream=log, every=10, clock=clock)
    for _ in range(300):  # 300 ticks over 30 s
        clock.now += 0.1
        bar.advance(1, "v1 serving")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 4  # at 0.1 s, 10.1 s, 20.1 s, and the end
    assert lines[-1].startswith("drill: 100%") and "300/300" in lines[-1]
    assert "v1 serving" in lines[-1]


def test_a_training_bar_in_a_log_shows_the_share_the_loss_and_an_eta() -> None:
    log, clock = io.StringIO(), Clock()
    with training_bar("fine-tuning", stream=log, clock=clock) as report:
        clock.now = 20.0
        report(0.25, 0.6931)
        clock.now = 40.0
        report(0.5, 0.4123)  # 20 s after the last line: it prints
    first, second = log.getvalue().splitlines()
    assert first == "fine-tuning:  25% [elapsed 00:20, eta 01:00, loss 0.693]"
    assert second.startswith("fine-tuning:  50% [elapsed 00:40, eta 00:40, loss 0.412]")


def test_work_that_never_started_leaves_nothing_in_a_log() -> None:
    log = io.StringIO()
    with training_bar("fine-tuning", stream=log):
        pass
    assert log.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    screen = Terminal()
    bar = Bar("drill", total=10, unit="pred", stream=screen)
    bar.advance(5, "v1")
    bar.write("a note")
    bar.close()
    assert "\r" in screen.getvalue() and "a note\n" in screen.getvalue()
    assert "5/10" in screen.getvalue()


def test_init_data_draws_the_fine_tune_as_it_reports(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    import tuneloop.bootstrap_data

    def fine_tune(*_: Any, progress: Any, **__: Any) -> InitResult:
        progress(0.5, 0.7)
        progress(1.0, 0.3)
        return InitResult(None, True, "created v1")  # type: ignore[arg-type]

    monkeypatch.setattr(tuneloop.bootstrap_data, "init_from_data", fine_tune)
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    done = CliRunner().invoke(main, ["init", "--data", str(data)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "created v1"
    assert "fine-tuning on reviews.jsonl: 100%" in done.stderr and "loss 0.300" in done.stderr
    assert "\r" not in done.stderr


def test_retrain_wait_draws_one_bar_then_prints_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(loop.time, "sleep", lambda _: None)
    states = iter(
        [
            run_record(state=RunState.QUEUED),
            *(run_record(state=RunState.RUNNING, progress=p / 100, loss=0.5) for p in range(1, 90)),
            run_record(state=RunState.PROMOTED, progress=1.0, loss=0.2),
        ]
    )
    run = loop.watch_run(lambda: next(states), desc="run r1")
    assert run.state == "promoted"
    err = capsys.readouterr().err
    assert err.count("\n") <= 3  # not one line per poll: a line every 10 s, and the last
    assert err.splitlines()[-1].startswith("run r1: 100%")
    assert json.dumps(run.to_json())  # the answer printed after the bar is the run itself


def test_steps_in_a_log_print_a_line_as_each_begins_and_one_at_the_end() -> None:
    log, clock = io.StringIO(), Clock()
    with Steps("gc", total=3, stream=log, clock=clock) as steps:
        for name in ("predictions", "feedback", "vacuum"):
            clock.now += 2.0
            steps.step(name)
    lines = log.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in log.getvalue()
    assert [status(line) for line in lines] == ["predictions", "feedback", "vacuum", "done"]
    assert "0/3" in lines[0] and "2/3" in lines[2]
    assert lines[3].startswith("gc: 100%") and "3/3" in lines[3]


def test_steps_that_fail_stop_where_they_were() -> None:
    log = io.StringIO()
    with pytest.raises(RuntimeError), Steps("init", total=3, stream=log) as steps:
        steps.step("loading")
        raise RuntimeError("no such model")
    [line] = log.getvalue().splitlines()  # the step it began, no "done" line after it
    assert "0/3" in line and status(line) == "loading"


def test_gc_prints_a_line_per_table_it_sweeps(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    monkeypatch.setenv("TUNELOOP_RETENTION_FEEDBACK_DAYS", "0")  # kept forever: no step
    done = CliRunner().invoke(main, ["gc"])
    assert done.exit_code == 0, done.output
    lines = done.stderr.splitlines()
    swept = ["embeddings", "predictions", "review_leases", "checks", "run_snapshots", "artifacts"]
    assert [status(line) for line in lines] == [*swept, "vacuum", "done"]
    assert lines[-1].startswith("gc: 100%") and "7/7" in lines[-1]
    assert "predictions    deleted 0" in done.stdout  # the counts stay on stdout


def test_init_generation_prints_a_line_per_step(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    from tests.generators import tiny_llama
    from tuneloop.bootstrap import GENERATOR_STEPS

    model = tiny_llama(tmp_path / "tiny")
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exited:
        main(["init", "--task", "generation", "--model", str(model)])
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert "created v1: causal generator" in out
    lines = err.splitlines()
    assert [status(line).split(" ")[0] for line in lines] == [*GENERATOR_STEPS, "done"]
    assert f"loading {model}" in lines[0] and lines[-1].startswith(f"init {model}: 100%")
