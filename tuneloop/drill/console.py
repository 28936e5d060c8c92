"""What `tuneloop drill` does around the drill: options in; JSON, report and console out."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tuneloop.drill.plan import DrillConfig
from tuneloop.drill.run import run_drill
from tuneloop.drill.system import DrillFailed


class ConsoleProgress:
    """Notes and a progress bar over the streamed predictions, on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._started = time.monotonic()

    def note(self, message: str) -> None:
        """A line above the bar, with the seconds since the start."""
        line = f"[drill {time.monotonic() - self._started:6.0f}s] {message}"
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def start(self, total: int) -> None:
        """Open the bar."""
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="pred", file=sys.stderr, dynamic_ncols=True)

    def tick(self, n: int, status: str) -> None:
        """Advance the bar by `n` and show the status."""
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix_str(status, refresh=True)

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
