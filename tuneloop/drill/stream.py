"""The drill's users, over HTTP: predictions in batches, feedback, a monitor check every N.

One client plays everyone. It records what was served (by which version, right or wrong), every
check, and every retrain run it sees, each at its position in the stream, for the summary and
the report. Nothing is shortcut: the checks' policy queues runs, the worker trains and gates,
and the api swaps the champion in on its own.

When a check queues a run, the stream waits for it to finish. In production a retrain takes
minutes while the traffic between two checks takes hours; a drill that streamed on would let the
machine's speed decide where in the stream a promotion lands (and how many runs fit). Waiting
keeps the figures a property of the loop, the same on a laptop and on a GPU host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from core.states import FINAL_STATES, CheckDecision, RunState
from tuneloop.drill.review import Reviewer

# The stream waits this long for a run in flight (one retrain on CPU is minutes).
RUN_WAIT_SECONDS = 1200.0
BUSY_RETRIES = 30


@dataclass(frozen=True)
class Served:
    """One prediction as a user saw it."""

    phase: str
    version: str
    predicted: str
    truth: str
    rated: bool
    # Generation: ROUGE-L F of the served text against the reference (None for a label).
    rouge: float | None = None

    @property
    def correct(self) -> bool:
        """Whether the served label was the true one."""
        return self.predicted == self.truth

    @property
    def quality(self) -> float:
        """What the figures average: 1 or 0 for a label, ROUGE-L for a generation."""
        return float(self.correct) if self.rouge is None else self.rouge


@dataclass
class Seen:
    """A retrain run as the drill saw it: when it appeared and when it finished (positions)."""

    run_id: str
    trigger: str
    phase: str
    queued_at: int
    state: str = RunState.QUEUED
    progress: float = 0.0
    finished_at: int | None = None
    finished_phase: str | None = None
    version: str | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    second_look: dict[str, Any] | None = None  # a pending challenger's failed second look


@dataclass
class Timeline:
    """Everything the drill observed, in stream order."""

    served: list[Served] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, Seen] = field(default_factory=dict)
    swaps: list[tuple[int, str]] = field(default_factory=list)  # (position, new version)
    phase_starts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # feedback items given, per phase

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for `timeline.json` in the drill's home."""
        return {
            "phase_starts": self.phase_starts,
            "served": [asdict(s) for s in self.served],
            "checks": self.checks,
            "runs": [asdict(s) for s in self.runs.values()],
            "swaps": self.swaps,
            "labels": self.labels,
        }

    @property
    def position(self) -> int:
        """Predictions served so far."""
        return len(self.served)

    def phase_of(self, position: int) -> str:
        """The phase a stream position belongs to."""
        phase = ""
        for name, start in self.phase_starts.items():
            if position >= start:
                phase = name
        return phase


Tick = Callable[[int, str], None]  # (new predictions, status line)


class Player:
    """Plays the users of one drill against a running api."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        check_every: int,
        batch_size: int,
        tick: Tick,
        health: Callable[[], None] = lambda: None,
        run_wait: float = RUN_WAIT_SECONDS,
        reviewer: Reviewer | None = None,
    ) -> None:
        self.client = client
        self.reviewer = reviewer  # labels from the review queue at each check, if any
        self.run_wait = run_wait  # longest wait for one run (seconds) before the drill fails
        self.check_every = check_every
        self.batch_size = batch_size
        self.tick = tick
        self.health = health  # raises when a process of the system died
        self.timeline = Timeline()

    def play(self, phase: str, rows: Sequence[Mapping[str, Any]], rated: list[bool]) -> None:
        """Stream `rows` in batches; rate the marked ones; check every `check_every`."""
        self.timeline.phase_starts[phase] = self.timeline.position
        self.timeline.labels.setdefault(phase, 0)
        done = 0
        while done < len(rows):
            size = min(self.batch_size, self.check_every - done % self.check_every)
            batch = rows[done : done + size]
            self._serve(phase, batch, rated[done : done + size])
            done += len(batch)
            if done % self.check_every == 0:
                self._review(phase)
                self._check(phase, done)
            self.health()
            self.poll_runs()
            self.tick(len(batch), self._status(phase))

    def _serve(self, phase: str, rows: Sequence[Mapping[str, Any]], rated: list[bool]) -> None:
        answer = self._post("/v1/predict", {"inputs": [r["text"] for r in rows]})
        version = str(answer["model_version"])
        if self.timeline.served and version != self.timeline.served[-1].version:
            self.timeline.swaps.append((self.timeline.position, version))
        for row, prediction, rate in zip(rows, answer["predictions"], rated, strict=True):
            served = Served(phase, version, str(prediction["label"]), row["label"], rate)
            self.timeline.served.append(served)
            if self.reviewer is not None:
                self.reviewer.served(str(prediction["id"]), served.truth)
            if rate:
                self._feedback(str(prediction["id"]), served)
                self.timeline.labels[phase] += 1

    def _feedback(self, prediction_id: str, served: Served) -> None:
        """Rating 5 when the label was right; rating 1 with the true label when it was wrong."""
        body: dict[str, Any] = {"prediction_id": prediction_id, "rating": 5}
        if not served.correct:
            body = {"prediction_id": prediction_id, "rating": 1, "label": served.truth}
        self._post("/v1/feedback", body)

    def _review(self, phase: str) -> None:
        """The reviewer labels this window's budget from the queue, before the check reads it."""
        if self.reviewer is None:
            return
        labeled = self.reviewer.review(
            get=self._get, post=self._post, position=self.timeline.position
        )
        self.timeline.labels[phase] += len(labeled)

    def _check(self, phase: str, at: int) -> None:
        check = self._post("/v1/monitor/check", None)
        position = self.timeline.position
        self.timeline.checks.append({**check, "phase": phase, "at": at, "position": position})
        if check["decision"] == CheckDecision.RETRAIN:
            self.wait_for_runs(timeout=self.run_wait)

    def poll_runs(self) -> None:
        """Record new runs and runs that reached a final state."""
        position = self.timeline.position
        for run in reversed(self._get("/v1/retrain")):
            seen = self.timeline.runs.get(run["run_id"])
            if seen is None:
                phase = self.timeline.phase_of(position)
                seen = Seen(run["run_id"], run["trigger"], phase, position)
                self.timeline.runs[seen.run_id] = seen
            if seen.finished_at is None and run["state"] in FINAL_STATES:
                seen.finished_at, seen.finished_phase = position, self.timeline.phase_of(position)
            seen.state, seen.version, seen.error = run["state"], run["version"], run["error"]
            seen.progress = float(run["progress"] or 0.0)
            seen.verdict, seen.metrics = run["verdict"] or {}, run["metrics"] or {}
            seen.second_look = run.get("second_look")

    def wait_for_runs(self, *, timeout: float, poll: float = 5.0) -> None:
        """Wait until no run is queued or running (the end of the stream waits; users don't)."""
        deadline = time.monotonic() + timeout
        while True:
            self.health()
            self.poll_runs()
            active = [s for s in self.timeline.runs.values() if s.state not in FINAL_STATES]
            if not active:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"retrain run {active[0].run_id} still {active[0].state}")
            run = active[0]
            self.tick(0, f"waiting for run {run.run_id[:8]} ({run.state} {run.progress:.0%})")
            time.sleep(poll)

    def champion(self) -> str | None:
        """The registry's champion now."""
        return self._get("/v1/models")["champion"]

    def _status(self, phase: str) -> str:
        version = self.timeline.served[-1].version if self.timeline.served else "-"
        last = self.timeline.checks[-1]["decision"] if self.timeline.checks else "-"
        alarms = sum(1 for c in self.timeline.checks if c["drift_detected"])
        labels = sum(self.timeline.labels.values())
        runs = len(self.timeline.runs)
        return f"{phase} {version} labels={labels} alarms={alarms} last_check={last} runs={runs}"

    def _post(self, path: str, body: dict[str, Any] | None) -> Any:
        for _ in range(BUSY_RETRIES):
            response = self.client.post(path, json=body)
            if response.status_code != 503:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self.client.get(path)
        response.raise_for_status()
        return response.json()
