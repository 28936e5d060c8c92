"""What the drill plays: its options, the splits of REF and SHIFT, the system's environment, and
the arguments of the tools that read a kept drill home."""

from __future__ import annotations

import argparse
import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from core.data import Row, read_labeled, split
from tuneloop.drill.summary import NEW_HELD

# REF: 60 % trains v1, 25 % is streamed, 15 % is held out (zero-shot: 85 % streamed).
REF_TRAIN_SHARE = 0.60
REF_HELD_SHARE = 0.15
MIN_REF_STREAMED = 300
# SHIFT: hold out 1,000 rows (a 3-point difference on fewer is noise) when at least 900 are left
# to stream - a detection (<= 400 predictions) and a few hundred labels at a 0.3 feedback rate -
# else 30 %.
SHIFT_HELD_ROWS = 1000
MIN_SHIFT_STREAMED = 900
SHIFT_HELD_SHARE = 0.30
# Rule: a classification user rates 3 in 10 predictions (issue 6's setting); a generation drill
# needs ~100 preferred outputs before its first run can be judged, which at 400 streamed rows and
# half of the raters writing one takes 6 in 10.
FEEDBACK_RATES = {"classification": 0.3, "generation": 0.6}
# Variables of the drill's own: a fresh home, a private api port and token (never the user's),
# and open mode on 127.0.0.1: the drill's users send predictions and feedback without a key.
OWN_VARIABLES = (
    "TUNELOOP_HOME",
    "TUNELOOP_ARTIFACT_DIR",
    "TUNELOOP_ADMIN_TOKEN",
    "TUNELOOP_API_HOST",
    "TUNELOOP_API_PORT",
    "TUNELOOP_API_OPEN",
    "TUNELOOP_ENV",
)


@dataclass(frozen=True)
class DrillConfig:
    """The drill's options, as `tuneloop drill` takes them."""

    reference: Path | None
    shifted: Path
    task: str = "classification"
    model: Path | None = None  # generation: v1's model (default: the packaged SmolLM2)
    zero_shot: bool = False
    oracle: bool = False
    feedback_rate: float | None = None  # None: the task's default (FEEDBACK_RATES)
    check_every: int = 100
    seed: int = 0
    batch_size: int = 16  # texts per predict request
    stream_rows: int | None = None  # generation: SHIFT rows streamed (None: the default size)
    held_rows: int | None = None  # generation: SHIFT rows held out (None: the default size)
    # Labels per 100 predictions from the review queue (tuneloop.drill.review); users rate none.
    review_budget: int | None = None

    @property
    def rate(self) -> float:
        """The share of streamed predictions users rate (none when a reviewer labels instead)."""
        if self.review_budget is not None:
            return 0.0
        return FEEDBACK_RATES[self.task] if self.feedback_rate is None else self.feedback_rate


@dataclass(frozen=True)
class DrillData:
    """The splits: v1's training rows, the two streams, and the two held-out sets."""

    ref_train: list[Row]
    ref_stream: list[Row]
    ref_held: list[Row]
    shift_stream: list[Row]
    shift_held: list[Row]

    @property
    def labels(self) -> list[str]:
        """Every label of either file."""
        rows = self.ref_train + self.ref_stream + self.shift_stream + self.shift_held
        return sorted({r["label"] for r in rows})

    @property
    def new_labels(self) -> list[str]:
        """Labels of SHIFT that REF lacks: classes the champion never met (CLINC150's new
        domains)."""
        known = {r["label"] for r in self.ref_train + self.ref_stream + self.ref_held}
        return sorted({r["label"] for r in self.shift_stream + self.shift_held} - known)


def load_data(config: DrillConfig, *, max_chars: int) -> DrillData:
    """Read and split REF and SHIFT (seeded); texts are clipped to the api's character limit."""
    if config.reference is None:
        raise ValueError("the classification drill needs --reference")
    ref = _read(config.reference, max_chars)
    shifted = _read(config.shifted, max_chars)
    ref_rest, ref_held = split(ref, REF_HELD_SHARE, seed=config.seed)
    ref_train: list[Row] = []
    if config.zero_shot:
        ref_stream = ref_rest
    else:
        share = REF_TRAIN_SHARE / (1 - REF_HELD_SHARE)
        ref_stream, ref_train = split(ref_rest, share, seed=config.seed + 1)
    if len(ref_stream) < MIN_REF_STREAMED:
        raise ValueError(
            f"{config.reference} streams {len(ref_stream)} rows; the drill needs at least "
            f"{MIN_REF_STREAMED} (a larger REF file)"
        )
    shift_stream, shift_held = split(shifted, shift_held_share(len(shifted)), seed=config.seed)
    return DrillData(ref_train, ref_stream, ref_held, shift_stream, shift_held)


def allow_new_labels(env: dict[str, str], data: DrillData) -> bool:
    """Let retraining learn SHIFT's labels that REF lacks (the drill is about learning them);
    a setting the user made still wins. Whether SHIFT has such labels."""
    if data.new_labels:
        env.setdefault("TUNELOOP_RETRAIN_ALLOW_NEW_LABELS", "true")
    return bool(data.new_labels)


def held_sets(data: DrillData) -> dict[str, list[Row]]:
    """The held-out sets versions are scored on: SHIFT's, REF's, and SHIFT's rows whose label
    REF lacks (NEW_HELD)."""
    new = set(data.new_labels)
    return {
        "shift_held": data.shift_held,
        "ref_held": data.ref_held,
        NEW_HELD: [r for r in data.shift_held if r["label"] in new],
    }


def shift_held_share(n: int) -> float:
    """The share of SHIFT held out: 1,000 rows where the file allows, else 30 %."""
    if n - SHIFT_HELD_ROWS >= MIN_SHIFT_STREAMED:
        return SHIFT_HELD_ROWS / n
    return SHIFT_HELD_SHARE


def feedback_mask(n: int, rate: float, *, seed: int) -> list[bool]:
    """Which of `n` streamed predictions a user rates (seeded, independent of the texts)."""
    rng = random.Random(f"feedback-{seed}")
    return [rng.random() < rate for _ in range(n)]


def phase_masks(data: DrillData, config: DrillConfig) -> tuple[list[bool], list[bool]]:
    """Which predictions of the REF stream and of the SHIFT stream a user rates: one seeded mask
    over the whole stream, split at the phase boundary."""
    n_ref = len(data.ref_stream)
    rated = feedback_mask(n_ref + len(data.shift_stream), config.rate, seed=config.seed)
    return rated[:n_ref], rated[n_ref:]


def _read(path: Path, max_chars: int) -> list[Row]:
    return [{"text": r["text"][:max_chars], "label": r["label"]} for r in read_labeled(path)]


def drill_defaults(check_every: int) -> dict[str, str]:
    """Settings the drill's processes get unless the environment sets them.

    Rules: the monitor window spans two check intervals, so a shift fills it within two checks,
    and a promoted champion's served reference is as large; checks run on the drill's clock (a
    check every `check_every` predictions), not on beat's; the cooldown is 0 because the drill
    replays hours of traffic in minutes and one run in flight already bounds retraining; the api
    looks for a new champion every half second; the worker only trains (checks run in the api).
    """
    window = str(2 * check_every)
    return {
        "TUNELOOP_MONITOR_WINDOW_SIZE": window,
        "TUNELOOP_MONITOR_REFERENCE_SIZE": window,
        "TUNELOOP_MONITOR_INTERVAL": "86400",
        "TUNELOOP_MONITOR_COOLDOWN_SECONDS": "0",
        "TUNELOOP_API_MODEL_POLL_SECONDS": "0.5",
        "TUNELOOP_WORKER_CONCURRENCY": "1",
        "HF_HUB_OFFLINE": "1",
    }


def child_env(home: Path, *, check_every: int) -> dict[str, str]:
    """The processes' environment: ours, then the drill defaults the user did not override."""
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    for key, value in drill_defaults(check_every).items():
        env.setdefault(key, value)
    env.update(
        {
            "TUNELOOP_HOME": str(home),
            "TUNELOOP_ADMIN_TOKEN": secrets.token_urlsafe(24),
            "TUNELOOP_ENV": "development",
            "TUNELOOP_API_HOST": "127.0.0.1",
            "TUNELOOP_API_OPEN": "true",
        }
    )
    return env


def kept_home_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """Arguments of a tool that reads a kept drill home: the home, REF, SHIFT and the seed."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("home", type=Path, help="a kept drill home (holds tuneloop.db)")
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--shifted", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    return parser
