"""`tuneloop drill --task generation`: the generation loop through the whole running system.

v1 is the default generator (or `--model`). With `--reference`, REF is streamed first without
feedback (its held-back part is the golden set, never trained on); then SHIFT is streamed and
users rate a share of it. The monitor's quality floors queue retrains, the worker fine-tunes and
gates, the api swaps. Every figure is the mean ROUGE-L F (0-1) on held-out rows that never
received feedback, under the classification drill's keys, with `"metric": "rougeL"`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.registry import Registry
from core.runtime.textgen import load_generation
from core.settings import Settings
from core.store.db import Database, upgrade
from core.textmetrics import rouge_l_rows
from retrain.sft import sft
from retrain.sft_data import Pair
from retrain.textgen_run import sft_args
from tuneloop.bootstrap import init_generator
from tuneloop.drill.plan import DrillConfig, child_env, feedback_mask
from tuneloop.drill.run import DrillOutcome, Reporter, _client, drill_home, settings_of
from tuneloop.drill.stream import RUN_WAIT_SECONDS
from tuneloop.drill.summary import REFERENCE, SHIFTED, summarise, versions
from tuneloop.drill.system import DrillFailed, running
from tuneloop.drill.textgen import (
    PREFERRED_RATE,
    REF_STREAMED_ROWS,
    SHIFT_HELD_ROWS,
    SHIFT_STREAMED_ROWS,
    PairData,
    PairPlayer,
    load_pairs,
)
from tuneloop.wiring import registry_of

# Rule: one-sentence answers fit in 48 tokens (SciTLDR's references average ~20 words).
MAX_NEW_TOKENS = 48
# REF rows held back as the golden set (when REF is given): a 5-point ROUGE-L regression on 100
# rows is ~4 standard errors of a paired mean.
GOLDEN_ROWS = 100
# Rules: a run starts once 100 preferred outputs exist (the policy's min_labeled: a 40 % holdout
# of them is the gate's 40-row minimum); floors are judged on 50 ratings; training stops after
# 10 minutes so that one run fits the drill's hour on a CPU (a LoRA step is ~10 s there).
GENERATION_DEFAULTS = {
    "TUNELOOP_MONITOR_MIN_LABELED": "100",
    "TUNELOOP_MONITOR_MIN_FEEDBACK": "50",
    "TUNELOOP_RETRAIN_GENERATION_MAX_SECONDS": "600",
}
# Generation is slow on a CPU: a request carries few prompts, so a swap lands close to its check.
BATCH_SIZE = 8


@dataclass
class PairScorer:
    """Mean ROUGE-L of registered versions on named prompt/reference sets, each computed once."""

    settings: Settings
    registry: Registry
    sets: dict[str, list[dict[str, str]]]
    max_new_tokens: int = MAX_NEW_TOKENS
    cache: dict[tuple[str, str], float | None] = field(default_factory=dict)

    def accuracy(self, version: str | None, on: str) -> float | None:
        if version is None or not self.sets.get(on):
            return None
        key = (version, on)
        if key not in self.cache:
            artifact = Path(self.registry.get(version).artifact_path)
            self.cache[key] = mean_rouge(
                self.settings, artifact, self.sets[on], self.max_new_tokens
            )
        return self.cache[key]


def mean_rouge(
    settings: Settings, artifact: Path, rows: list[dict[str, str]], max_new_tokens: int
) -> float:
    """Mean ROUGE-L F of greedy answers by the artifact (loaded as the api loads it)."""
    generator = load_generation(artifact, version=artifact.name, device=settings.device)
    outs = generator.generate_texts([r["prompt"] for r in rows], max_new_tokens=max_new_tokens)
    scores = rouge_l_rows([o.text for o in outs], [r["reference"] for r in rows])
    return sum(scores) / len(scores)


def run_generation_drill(
    config: DrillConfig, *, progress: Reporter, reports_to: Path | None = None
) -> DrillOutcome:
    """Run the generation drill; returns the figures and the timeline behind them."""
    started = time.perf_counter()
    with drill_home() as home:
        env = child_env(home, check_every=config.check_every)
        for key, value in GENERATION_DEFAULTS.items():
            env.setdefault(key, value)
        settings = settings_of(env)
        data = load_pairs(
            config.reference,
            config.shifted,
            seed=config.seed,
            max_chars=settings.api.max_chars,
            sizes=(
                REF_STREAMED_ROWS + GOLDEN_ROWS,
                config.stream_rows or SHIFT_STREAMED_ROWS,
                config.held_rows or SHIFT_HELD_ROWS,
            ),
        )
        golden, ref_stream = data.ref_stream[:GOLDEN_ROWS], data.ref_stream[GOLDEN_ROWS:]
        progress.note(
            f"home {home}; REF: {len(ref_stream)} streamed, {len(golden)} golden; SHIFT: "
            f"{len(data.shift_stream)} streamed, {len(data.shift_held)} held out"
        )
        v1 = _bootstrap(config, settings, golden, progress)
        timeline, final = _play(config, data, ref_stream, env, home, progress)
        db = Database(settings.database_url)
        registry = registry_of(settings, db)
        chosen = versions(timeline, final)
        progress.note(f"scoring {chosen} on held-out rows")
        scorer = PairScorer(settings, registry, {"shift_held": data.shift_held, "ref_held": golden})
        for version in (chosen.base, chosen.promoted, chosen.final):
            scorer.accuracy(version, "shift_held")
        scorer.accuracy(chosen.final, "ref_held")
        seconds = time.perf_counter() - started
        oracle = _oracle(config, settings, registry, v1, data, timeline, progress)
        summary = {
            **summarise(timeline, chosen, scorer.accuracy, oracle_accuracy=oracle, seconds=seconds),
            "metric": "rougeL",
        }
        db.dispose()
        (home / "timeline.json").write_text(json.dumps(timeline.to_dict(), default=str))
        return DrillOutcome(summary, timeline, chosen, home, {})


def _oracle(
    config: DrillConfig,
    settings: Settings,
    registry: Registry,
    v1: str,
    data: PairData,
    timeline: Any,
    progress: Reporter,
) -> float | None:
    """v1 fine-tuned as retraining does on every rated SHIFT row's reference, on held-out rows."""
    if not config.oracle:
        return None
    served = [s for s in timeline.served if s.phase == SHIFTED]
    pairs = [
        Pair(prompt=row["prompt"], completion=row["reference"])
        for row, s in zip(data.shift_stream, served, strict=False)
        if s.rated
    ]
    progress.note(f"oracle: fine-tuning {v1} on all {len(pairs)} rated SHIFT rows")
    with tempfile.TemporaryDirectory(prefix="tuneloop-oracle-") as out:
        result = sft(
            base=Path(registry.get(v1).artifact_path),
            pairs=pairs,
            args=sft_args(settings),
            out=Path(out),
        )
        return mean_rouge(settings, result.path, data.shift_held, MAX_NEW_TOKENS)


def _bootstrap(
    config: DrillConfig, settings: Settings, golden: list[dict[str, str]], progress: Reporter
) -> str:
    upgrade(settings.database_url)
    registry = registry_of(settings)
    if registry.champion() is not None:
        raise DrillFailed(f"{settings.database_url} has a champion; the drill needs an empty store")
    model = str(config.model) if config.model else "smollm2"
    progress.note(f"bootstrap: converting {model} (init --task generation)")
    result = init_generator(settings, registry, model=model, golden=golden)
    progress.note(f"bootstrap: {result.message}")
    assert result.version is not None
    return result.version.version


def _play(
    config: DrillConfig,
    data: PairData,
    ref_stream: list[dict[str, str]],
    env: dict[str, str],
    home: Path,
    progress: Reporter,
) -> tuple[Any, str | None]:
    progress.note("starting api, worker and beat")
    with running(env, home) as system, _client(system) as client:
        player = PairPlayer(
            client,
            check_every=config.check_every,
            batch_size=BATCH_SIZE,
            tick=progress.tick,
            health=system.check,
            max_new_tokens=MAX_NEW_TOKENS,
            preferred_rate=PREFERRED_RATE,
            seed=config.seed,
        )
        rated = feedback_mask(len(data.shift_stream), config.rate, seed=config.seed)
        progress.start(len(ref_stream) + len(data.shift_stream))
        if ref_stream:
            player.play(REFERENCE, ref_stream, [False] * len(ref_stream))
        progress.note(f"shift begins after {len(ref_stream)} generations")
        player.play(SHIFTED, data.shift_stream, rated)
        player.wait_for_runs(timeout=RUN_WAIT_SECONDS)
        progress.close()
        return player.timeline, player.champion()
