"""`python -m benchmarks.soak` (`make soak`): the loop under steady traffic while it retrains and
promotes, and nothing acknowledged lost.

A fresh api, worker and beat (SQLite, the default zero-shot model, open mode) in a temporary home.
First `--labels` predictions get feedback with their true label (the first run's data). A retrain
then starts, so that the peak is measured while training takes its share of the machine:
closed-loop predictions from this process's client, `--peak-seconds` long. Then `--seconds` of
open-loop traffic at `--load` times that peak: every arrival predicts one synthetic review and a
`--feedback` share of them gives feedback with the true label. When the retrain ends, its
challenger is promoted (by the gate, or by hand when the gate kept the champion), so a swap
happens under load; while a minute is left another retrain runs. Reported: statuses per route (the
target is 0 non-2xx), the api's resident memory over time, every feedback answered 201 looked up in
the store afterwards, the runs and promotions with their times.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.loadgen import _BAD, _CLOSERS, _GOOD, _OPENERS, _THINGS, percentile
from benchmarks.serving import bench_env, build_model, rss_mb
from tuneloop.drill.system import System, running

TOKEN = "soak-admin-token-0123456789"
DONE = {"promoted", "rejected", "failed", "cancelled"}


def labeled_reviews(n: int, seed: int = 11) -> list[tuple[str, str]]:
    """`n` short reviews with their true label, as `benchmarks.loadgen` writes them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        good = rng.random() < 0.5
        verdict = rng.choice(_GOOD if good else _BAD)
        text = f"{rng.choice(_OPENERS)} {rng.choice(_THINGS)} and it {verdict}, "
        rows.append((text + rng.choice(_CLOSERS), "positive" if good else "negative"))
    return rows


class Traffic:
    """Predictions with feedback on a share of them; statuses, latencies, acknowledged ids."""

    def __init__(self, client: httpx.AsyncClient, feedback_share: float) -> None:
        self.client, self.feedback_share = client, feedback_share
        self.rows = labeled_reviews(2048)
        self.rng = random.Random(5)
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.acked: list[str] = []

    async def one(self, n: int) -> None:
        text, label = self.rows[n % len(self.rows)]
        started = time.perf_counter()
        answer = await self._post("/v1/predict", {"inputs": text})
        self.latencies.append(time.perf_counter() - started)
        if answer is None or self.rng.random() >= self.feedback_share:
            return
        prediction = answer["predictions"][0]
        rating = 5 if prediction["label"] == label else 1
        body = {"prediction_id": prediction["id"], "rating": rating, "label": label}
        if (ack := await self._post("/v1/feedback", body)) is not None:
            self.acked.append(ack["id"])

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            r = await self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            self.statuses[f"{path} {type(exc).__name__}"] += 1
            return None
        self.statuses[f"{path} {r.status_code}"] += 1
        return r.json() if r.is_success else None


async def peak(traffic: Traffic, seconds: float, concurrency: int) -> float:
    """Predictions per second, closed loop, with this process's client and the soak's mix."""
    stop, count = time.perf_counter() + seconds, 0

    async def loop(k: int) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await traffic.one(k * 100_003 + count)
            count += 1

    # the soak's own mix (feedback on a share): a predict-only peak overstates what it serves
    await asyncio.gather(*(loop(k) for k in range(concurrency)))
    return count / seconds


async def soak(system: System, args: argparse.Namespace) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {system.token}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=system.base_url, limits=limits, timeout=30) as client:
        runs: list[dict[str, Any]] = []
        started = time.perf_counter()

        async def retrain() -> str:
            r = await client.post("/v1/retrain", headers=admin)
            run_id: str = r.json()["run_id"]
            runs.append({"run_id": run_id, "asked_s": round(time.perf_counter() - started, 1)})
            return run_id

        traffic = Traffic(client, 1.0)
        while len(traffic.acked) < args.labels:  # the retrain's training rows and holdout
            await asyncio.gather(*(traffic.one(len(traffic.latencies) + k) for k in range(16)))
        print(f"{len(traffic.acked)} labels given; retraining", file=sys.stderr)
        traffic.feedback_share = args.feedback
        run_id = await retrain()
        rate = await peak(traffic, args.peak_seconds, args.concurrency)
        print(f"peak while training: {rate:.1f} predictions/s", file=sys.stderr)
        peak_statuses = dict(traffic.statuses)
        traffic.statuses.clear()
        traffic.latencies.clear()
        target = args.load * rate
        rss: list[tuple[float, float]] = []
        soak_start = time.perf_counter()
        stop_at = soak_start + args.seconds
        jobs: set[asyncio.Task[None]] = set()
        next_poll, n = soak_start, 0
        while (now := time.perf_counter()) < stop_at:
            due = soak_start + n / target
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(traffic.one(n))
            jobs.add(task)
            task.add_done_callback(jobs.discard)
            n += 1
            if time.perf_counter() >= next_poll:
                next_poll += 5
                rss.append(
                    (round(time.perf_counter() - soak_start, 1), rss_mb(system.procs["api"].pid))
                )
                run_id = await _advance(client, admin, run_id, runs, started, stop_at, retrain)
        await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - soak_start
        ordered = sorted(traffic.latencies)
        return {
            "peak_per_s": round(rate, 1),
            "peak_statuses": peak_statuses,
            "load": args.load,
            "offered_per_s": round(target, 1),
            "served_per_s": round(len(traffic.latencies) / elapsed, 1),
            "statuses": dict(sorted(traffic.statuses.items())),
            "non_2xx": sum(
                v for k, v in traffic.statuses.items() if not k.split()[-1].startswith("2")
            ),
            "predict_p50_ms": round(percentile(ordered, 0.5) * 1000, 1),
            "predict_p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
            "rss_mb": rss,
            "runs": runs,
            "feedback_acknowledged": len(traffic.acked),
            "acked": traffic.acked,
        }


async def _advance(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    run_id: str,
    runs: list[dict[str, Any]],
    started: float,
    stop_at: float,
    retrain: Callable[[], Awaitable[str]],
) -> str:
    """Poll the run; when it ends, promote its challenger by hand if the gate did not, and start
    another while at least a minute of the soak is left."""
    run = (await client.get(f"/v1/retrain/{run_id}", headers=admin)).json()
    if run["state"] not in DONE or "state" in runs[-1]:
        return run_id
    record = runs[-1]
    record.update(
        state=run["state"],
        version=run.get("version"),
        ended_s=round(time.perf_counter() - started, 1),
    )
    if run["state"] == "rejected" and run.get("version"):
        r = await client.post(f"/v1/models/{run['version']}/promote", headers=admin)
        record["promoted_by_hand"] = r.status_code
    if stop_at - time.perf_counter() > 60:
        return await retrain()
    return run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--load", type=float, default=0.8, help="Share of the peak offered.")
    parser.add_argument("--feedback", type=float, default=0.3, help="Share of predictions rated.")
    parser.add_argument("--labels", type=int, default=400, help="Labels given before training.")
    parser.add_argument("--peak-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuneloop-soak-") as tmp:
        home = Path(tmp)
        build_model(home)
        env = {
            **bench_env(home),
            "TUNELOOP_ADMIN_TOKEN": TOKEN,
            "TUNELOOP_MONITOR_INTERVAL": "100000",
        }
        with running(env, home) as system:
            result = asyncio.run(soak(system, args))
        acked = result.pop("acked")
        with sqlite3.connect(home / "tuneloop.db") as store:
            stored = {row[0] for row in store.execute("SELECT id FROM feedback")}
        result["feedback_stored"] = sum(a in stored for a in acked)
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
