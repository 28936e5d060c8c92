"""`tuneloop drill`: replay a domain shift through the whole running system and measure it.

Bootstrap v1 (`tuneloop init`, on 60 % of REF or zero-shot), start the real api, worker and
beat in a fresh home, stream REF and then SHIFT as users with feedback, run a monitor check every
N predictions (the stream waits while a run the policy queued trains and is gated), and score
the versions that mattered on held-out rows that never received feedback. See
`tuneloop.drill.summary` for the figures.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from core.data import write_jsonl
from core.registry import VersionInfo
from core.settings import Settings, get_settings
from core.states import CheckDecision
from core.store.db import Database, upgrade
from tuneloop.bootstrap import init_zero_shot, parse_labels
from tuneloop.bootstrap_data import init_from_data
from tuneloop.drill.measure import Oracle, Scorer, train_oracle
from tuneloop.drill.plan import (
    DrillConfig,
    DrillData,
    allow_new_labels,
    child_env,
    held_sets,
    load_data,
    phase_masks,
)
from tuneloop.drill.review import Reviewer
from tuneloop.drill.stream import RUN_WAIT_SECONDS, Player, Timeline
from tuneloop.drill.summary import (
    REFERENCE,
    SHIFTED,
    Versions,
    label_figures,
    new_label_figures,
    summarise,
    versions,
)
from tuneloop.drill.system import DrillFailed, System, running
from tuneloop.wiring import registry_of

HTTP_TIMEOUT_SECONDS = 300  # a monitor check is synchronous; on a busy CPU it takes a while


class Reporter(Protocol):
    """How the drill reports while it runs (its notes and bar; training reports a
    `retrain.progress.Progress`)."""

    def note(self, message: str) -> None: ...

    def start(self, total: int) -> None: ...

    def tick(self, n: int, status: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class DrillOutcome:
    """The JSON figures, the timeline behind them, and where the run's files are."""

    summary: dict[str, Any]
    timeline: Timeline
    versions: Versions
    home: Path
    reports: dict[str, Path] = field(default_factory=dict)  # check id -> Evidently HTML
    oracle_seconds: float | None = None


def run_drill(
    config: DrillConfig, *, progress: Reporter, reports_to: Path | None = None
) -> DrillOutcome:
    """Run the whole drill; Evidently reports of the checks are saved into `reports_to`."""
    started = time.perf_counter()
    with drill_home() as home:
        env = child_env(home, check_every=config.check_every)
        settings = settings_of(env)
        data = load_data(config, max_chars=settings.api.max_chars)
        if allow_new_labels(env, data):
            settings = settings_of(env)
            progress.note(f"SHIFT brings {len(data.new_labels)} labels REF lacks")
        progress.note(f"home {home}; {_sizes(data)}")
        v1 = bootstrap(config, data, settings=settings, progress=progress)
        timeline, final, reports = _play(config, data, env, home, progress, reports_to)
        db = Database(settings.database_url)
        registry = registry_of(settings, db)
        chosen = versions(timeline, final)
        progress.note(f"scoring {chosen} on held-out rows")
        scorer = Scorer(settings, registry, held_sets(data))
        scorer.score_all(chosen)
        oracle_started = time.perf_counter()
        oracle = _oracle(config, data, settings, v1, progress)
        oracle_seconds = time.perf_counter() - oracle_started
        summary = summarise(
            timeline,
            chosen,
            scorer.accuracy,
            oracle_accuracy=oracle.accuracy if oracle else None,
            seconds=time.perf_counter() - started - oracle_seconds,
        )
        summary |= label_figures(timeline, config.review_budget)
        summary |= new_label_figures(chosen, scorer.accuracy, data.new_labels)
        db.dispose()
        (home / "timeline.json").write_text(json.dumps(timeline.to_dict(), default=str))
        return DrillOutcome(summary, timeline, chosen, home, reports, oracle_seconds)


def bootstrap(
    config: DrillConfig,
    data: DrillData,
    *,
    settings: Settings,
    progress: Reporter,
) -> VersionInfo:
    """Migrate the store and create v1 as `tuneloop init` does (refuses a store in use)."""
    upgrade(settings.database_url)
    registry = registry_of(settings)
    if registry.champion() is not None:  # e.g. TUNELOOP_DATABASE_URL names a store in use
        raise DrillFailed(f"{settings.database_url} has a champion; the drill needs an empty store")
    if config.zero_shot:
        result = init_zero_shot(settings, registry, labels=parse_labels(()))
    else:
        train_file = settings.home / "ref-train.jsonl"
        write_jsonl(train_file, data.ref_train)
        progress.note(f"bootstrap: fine-tuning v1 on {len(data.ref_train)} REF rows (init --data)")
        result = init_from_data(settings, registry, data=train_file)
    progress.note(f"bootstrap: {result.message}")
    assert result.version is not None
    return result.version


def _play(
    config: DrillConfig,
    data: DrillData,
    env: dict[str, str],
    home: Path,
    progress: Reporter,
    reports_to: Path | None,
) -> tuple[Timeline, str | None, dict[str, Path]]:
    """Start the system, stream both phases, wait for a run in flight, save the reports."""
    progress.note("starting api, worker and beat")
    with running(env, home) as system, _client(system) as client:
        player = Player(
            client,
            check_every=config.check_every,
            batch_size=config.batch_size,
            tick=progress.tick,
            health=system.check,
            reviewer=Reviewer(config.review_budget) if config.review_budget else None,
        )
        n_ref = len(data.ref_stream)
        ref_rated, shift_rated = phase_masks(data, config)
        progress.start(n_ref + len(data.shift_stream))
        player.play(REFERENCE, data.ref_stream, ref_rated)
        progress.note(f"shift begins after {n_ref} predictions")
        player.play(SHIFTED, data.shift_stream, shift_rated)
        player.wait_for_runs(timeout=RUN_WAIT_SECONDS)
        progress.close()
        final = player.champion()
        reports = save_reports(client, player.timeline, reports_to) if reports_to else {}
    return player.timeline, final, reports


def save_reports(client: httpx.Client, timeline: Timeline, folder: Path) -> dict[str, Path]:
    """Save the Evidently HTML reports of the key checks (each is ~4 MB, so not all of them)."""
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Path] = {}
    for n, check in enumerate(timeline.checks, start=1):
        if check["id"] not in key_checks(timeline):
            continue
        response = client.get(f"/v1/monitor/checks/{check['id']}/report")
        if response.status_code == 200:
            path = folder / f"check-{n:02d}-{check['phase']}-{check['at']}.html"
            path.write_text(response.text, encoding="utf-8")
            saved[check["id"]] = path
    return saved


def key_checks(timeline: Timeline) -> set[str]:
    """The last check of the reference phase, the first alarm, each check that queued a run,
    and the last check."""
    judged = [c for c in timeline.checks if c.get("has_report")]
    ref = [c for c in judged if c["phase"] == REFERENCE]
    alarms = [c for c in judged if c["phase"] == SHIFTED and c["drift_detected"]]
    keys = [
        *ref[-1:],
        *alarms[:1],
        *(c for c in judged if c["decision"] == CheckDecision.RETRAIN),
        *judged[-1:],
    ]
    return {c["id"] for c in keys}


def _oracle(
    config: DrillConfig, data: DrillData, settings: Settings, v1: VersionInfo, progress: Reporter
) -> Oracle | None:
    if not config.oracle:
        return None
    progress.note(
        f"oracle: fine-tuning {v1.version} on all {len(data.shift_stream)} streamed SHIFT rows"
    )
    return train_oracle(
        settings,
        start=Path(v1.artifact_path),
        labels=v1.labels,
        rows=data.shift_stream,
        held=data.shift_held,
    )


@contextmanager
def _client(system: System) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {system.token}"}
    with httpx.Client(base_url=system.base_url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS) as c:
        yield c


@contextmanager
def drill_home() -> Iterator[Path]:
    """A new folder under TUNELOOP_HOME, kept; without it a temporary one, kept only on failure
    (its logs say why)."""
    root = os.environ.get("TUNELOOP_HOME")
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix=f"drill-{time.strftime('%Y%m%d-%H%M%S')}-", dir=root))
        return
    home = Path(tempfile.mkdtemp(prefix="tuneloop-drill-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def settings_of(env: dict[str, str]) -> Settings:
    """Settings as the drill's processes read them from `env`."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return get_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sizes(data: DrillData) -> str:
    return (
        f"REF: {len(data.ref_train)} train / {len(data.ref_stream)} streamed / "
        f"{len(data.ref_held)} held out; SHIFT: {len(data.shift_stream)} streamed / "
        f"{len(data.shift_held)} held out"
    )
