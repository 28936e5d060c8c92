"""What `tuneloop drill` does around the drill: options in; JSON, report and console out."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tuneloop.cli.progress import Bar
from tuneloop.drill.plan import DrillConfig
from tuneloop.drill.run import run_drill
from tuneloop.drill.system import DrillFailed


class ConsoleProgress:
    """Notes and a progress bar over the streamed predictions, on stderr (a line every few
    seconds when stderr is a log: see `tuneloop.cli.progress`)."""

    def __init__(self) -> None:
        self._bar: Bar | None = None
        self._started = time.monotonic()

    def note(self, message: str) -> None:
        """A line above the bar, with the seconds since the start."""
        line = f"[drill {time.monotonic() - self._started:6.0f}s] {message}"
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, file=sys.stderr)

    def start(self, total: int) -> None:
        """Open the bar."""
        self._bar = Bar("drill", total=total, unit="pred", stream=sys.stderr)

    def tick(self, n: int, status: str) -> None:
        """Advance the bar by `n` and show the status."""
        if self._bar is not None:
            self._bar.advance(n, status)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run(options: dict[str, Any], *, json_path: Path | None, report_path: Path | None) -> int:
    """Run the drill with the CLI's options; print the JSON; 1 when the system failed."""
    config = DrillConfig(**options)
    progress = ConsoleProgress()
    reports = report_path.with_name(report_path.stem + "-checks") if report_path else None
    try:
        if config.task == "generation":
            from tuneloop.drill.run_textgen import run_generation_drill

            outcome = run_generation_drill(config, progress=progress, reports_to=reports)
        else:
            outcome = run_drill(config, progress=progress, reports_to=reports)
    except (DrillFailed, TimeoutError, ValueError) as exc:
        progress.close()
        print(f"drill failed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(outcome.summary, indent=2)
    print(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n", encoding="utf-8")
        progress.note(f"wrote {json_path}")
    if report_path is not None:
        from tuneloop.drill.report import write_report

        write_report(report_path, config=config, outcome=outcome)
        progress.note(f"wrote {report_path} (Evidently reports in {reports})")
    return 0
