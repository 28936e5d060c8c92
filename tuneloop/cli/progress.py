"""One progress display for the CLI's long work (init, retrain --wait, gc, the drill, benches).

On a terminal it is a tqdm bar redrawn in place. Anywhere else (a log file, a pipe, CI) a bar's
carriage-return redraws pile up as thousands of fragments in one line, so it prints a whole
line every `LINE_EVERY` seconds instead, formatted by tqdm the same way, and one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from retrain.progress import Progress

# Seconds between lines in a non-interactive stream: a 10-minute fine-tune logs ~60 lines.
LINE_EVERY = 10.0
# Seconds before a bar first shows: work that ends sooner (a no-op init) leaves no bar behind.
SHOW_AFTER = 1.0
# A share-of-work bar (training, a run): a count of 100ths means nothing, so none is shown.
SHARE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
SHARE_LINE = "{desc}: {percentage:3.0f}% [elapsed {elapsed}, eta {remaining}{postfix}]"


class Bar:
    """A progress bar on a terminal, or a line every `every` seconds on any other stream."""

    def __init__(
        self,
        desc: str,
        *,
        total: float,
        unit: str = "it",
        share: bool = False,
        stream: IO[str] | None = None,
        every: float = LINE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.unit, self.every, self.clock = desc, total, unit, every, clock
        self.n: float = 0  # an int while counts are added: tqdm shows 300/300, not 300.0
        self.status = ""
        self._format = SHARE_LINE if share else None
        self._started = clock()
        self._printed: float | None = None  # when the last line went out
        self._shown: tuple[float, str] | None = None  # and what it said
        self._bar: Any = None
        if _interactive(self.stream):
            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                bar_format=SHARE_FORMAT if share else None,
                delay=SHOW_AFTER,
            )

    def update_to(self, n: float, status: str | None = None) -> None:
        """Set the work done to `n` (of `total`) and, when given, the status after it."""
        self.advance(n - self.n, status)

    def advance(self, n: float, status: str | None = None) -> None:
        """Add `n` to the work done; `status` (the loss, the phase) replaces the last one."""
        self.n += n
        if status is not None:
            self.status = status
        if self._bar is not None:
            self._bar.update(n)
            if status is not None:
                self._bar.set_postfix_str(status, refresh=True)
            return
        now = self.clock()
        if self._printed is None or now - self._printed >= self.every:
            self._print_line(now)

    def write(self, line: str) -> None:
        """A line of its own, above the bar on a terminal."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar; on a log, print the last state unless it was just printed (or nothing
        was ever done)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._printed is not None and self._shown != (self.n, self.status):
            self._print_line(self.clock())

    def _print_line(self, now: float) -> None:
        self._printed, self._shown = now, (self.n, self.status)
        line = tqdm.format_meter(
            min(self.n, self.total),
            self.total,
            now - self._started,
            prefix=self.desc,
            unit=self.unit,
            postfix=self.status or None,
            bar_format=self._format,
            ascii=True,
        )
        print(line, file=self.stream, flush=True)


class Steps:
    """Work of `total` named steps as one bar: `step(name)` ends the step before and shows the
    next; `note(line)` prints above it. On a log every step is a line, since each is long."""

    def __init__(self, desc: str, *, total: int, **options: Any) -> None:
        self._bar = Bar(desc, total=total, unit="step", every=0.0, **options)
        self._started = False

    def step(self, name: str) -> None:
        """Mark the step before done and begin `name`."""
        self._bar.advance(1 if self._started else 0, name)
        self._started = True

    def note(self, line: str) -> None:
        """A line of its own (a step's result), above the bar on a terminal."""
        self._bar.write(line)

    def close(self, *, done: bool = True) -> None:
        """End the bar, every step counted when the work got to its end (`done`)."""
        if self._started and done:
            self._bar.update_to(self._bar.total, "done")
        self._bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self.close(done=kind is None)


@contextmanager
def training_bar(desc: str, **options: Any) -> Iterator[Progress]:
    """A `retrain.progress.Progress` reporter (share done, latest loss) drawn as a bar."""
    bar = Bar(desc, total=100, share=True, **options)

    def report(fraction: float, loss: float | None) -> None:
        bar.update_to(100 * fraction, loss_status(loss))

    try:
        yield report
    finally:
        bar.close()


def loss_status(loss: float | None) -> str | None:
    """`loss 0.412`, or None while no loss has been logged."""
    return None if loss is None else f"loss {loss:.3f}"


def search_status(search: dict[str, Any] | None) -> str | None:
    """`trial 3/10, best F1 0.871` while a run searches, `searched 10 trials, best F1 0.871`
    once its challenger trains; None for a run that does not search."""
    if not search or "trials" not in search or search.get("skipped"):
        return None
    done, n = len(search["trials"]), search["n_trials"]
    scores = [t["objective"] for t in search["trials"] if t["objective"] is not None]
    best = f", best F1 {max(scores):.3f}" if scores else ""
    if "chosen" in search:
        return f"searched {done} trials{best}"
    return f"trial {min(done + 1, n)}/{n}{best}"


def _interactive(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
