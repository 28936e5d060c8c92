"""`python -m benchmarks.overload`: the api over its peak, with clients that honour Retry-After
and with clients that retry 5 ms after a 503.

The api runs alone as a subprocess (the default zero-shot model, SQLite, one text per request).
First its peak: closed-loop connections (`benchmarks.loadgen`) at `--peak-concurrency`. Then, for
each kind of client, open-loop arrivals (`benchmarks.overload_client`) from `--clients` separate
processes together offering `--rate` texts/s, a fixed rate so that two trees measured one after
the other get the same load, or by default `--factor` times the peak just measured. Reported per
kind: goodput (arrivals of the measured window answered 2xx, per second of it) beside the peak,
the p99 of a rejection's answer time and of an admitted request's as the clients saw them, beside
the api's own time per refusal (its `tuneloop_api_protocol_refusal_seconds` histogram, from
/metrics before and after) and the clients' own loop lag and CPU, so the api's part of a slow
rejection is told apart from the load generator's; statuses, connections, the api's CPU and
resident memory, and the load average before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from benchmarks.overload_client import summarise
from benchmarks.serving import (
    API,
    BenchConfig,
    _server,
    bench_env,
    build_model,
    cpu_seconds,
    rss_mb,
    run_loadgen,
)

REFUSAL_METRIC = "tuneloop_api_protocol_refusal_seconds"


def offered_rate(rate: float, factor: float, peak: float) -> float:
    """The arrival rate to offer: `rate` when given (> 0), else `factor` times the peak."""
    return rate if rate > 0 else factor * peak


def refusal_buckets(metrics_text: str) -> dict[float, float]:
    """The refusal histogram's cumulative counts by upper bound (inf included), plus its sum
    under the key -1; empty when the api has no such histogram (an older tree)."""
    buckets: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(f"{REFUSAL_METRIC}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{REFUSAL_METRIC}_sum"):
            buckets[-1.0] = float(line.rsplit(" ", 1)[1])
    return buckets


def refusal_figures(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Refusals the api made between two readings, their mean time and the bucket bound under
    which 99 % of them fell (the histogram's resolution), in ms; None where nothing was read."""
    if not after:
        return {"api_refusals": None, "api_refusal_mean_ms": None, "api_refusal_p99_le_ms": None}
    bounds = sorted(b for b in after if b >= 0)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    p99 = next((b for b, n in zip(bounds, counts, strict=True) if n >= 0.99 * total), math.inf)
    mean = (after[-1.0] - before.get(-1.0, 0.0)) / total if total else 0.0
    return {
        "api_refusals": int(total),
        "api_refusal_mean_ms": round(mean * 1000, 3),
        "api_refusal_p99_le_ms": None if not total or math.isinf(p99) else p99 * 1000,
    }


def _read_metrics(port: int) -> dict[float, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        return refusal_buckets(answer.read().decode())


def _overload(
    port: int, pid: int, rate: float, honour: bool, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """One run of `args.clients` client processes together offering `rate`; its report."""
    command = [sys.executable, "-m", "benchmarks.overload_client", "--port", str(port)]
    command += ["--rate", str(rate), "--warmup", str(args.warmup), "--duration", str(args.duration)]
    command += ["--give-up", str(args.give_up), "--clients", str(args.clients)]
    command += ["--honour"] if honour else []
    rss_before, load_before = rss_mb(pid), os.getloadavg()[0]
    buckets, cpu = _read_metrics(port), cpu_seconds(pid)
    outs = [tmp / f"client-{k}.json" for k in range(args.clients)]
    procs = [
        subprocess.Popen([*command, "--client", str(k), "--out", str(out)], stderr=subprocess.PIPE)
        for k, out in enumerate(outs)
    ]
    timeout = args.warmup + args.duration + args.give_up + 120
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"overload client failed: {err.decode()[-2000:]}")
    raws = [orjson.loads(out.read_bytes()) for out in outs]
    elapsed = args.warmup + args.duration  # the api's CPU over the arrivals, the tail included
    result = summarise(raws)
    result.update(refusal_figures(buckets, _read_metrics(port)))
    result.update(
        api_cpu_cores=round((cpu_seconds(pid) - cpu) / elapsed, 2),
        rss_mb_before=rss_before,
        rss_mb_after=rss_mb(pid),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: the peak, then a run of each kind of client; JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=float, default=2.0, help="Offered load over the peak.")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="Offer this many texts/s, not --factor times the peak (the same for every tree).",
    )
    parser.add_argument("--clients", type=int, default=1, help="Load generator processes.")
    parser.add_argument("--peak-concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--give-up", type=float, default=10.0, help="A client's patience, s.")
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuneloop-overload-") as tmp:
        home = Path(tmp)
        build_model(home)
        with _server(API, "/readyz", bench_env(home), home / "api.log") as (port, pid):
            config = BenchConfig(duration=args.duration, warmup=args.warmup)
            peak = run_loadgen(port, args.peak_concurrency, config)
            rate = offered_rate(args.rate, args.factor, float(peak["rps"]))
            print(f"peak: {peak['rps']} texts/s at c={args.peak_concurrency}", file=sys.stderr)
            runs = []
            for honour in (True, False):
                run = _overload(port, pid, rate, honour, args, home)
                run["goodput_over_peak"] = round(run["goodput_per_s"] / float(peak["rps"]), 3)
                run["goodput_over_offered"] = round(run["goodput_per_s"] / rate, 3)
                print(orjson.dumps(run).decode(), file=sys.stderr)
                runs.append(run)
    result = {"peak": peak, "factor": None if args.rate > 0 else args.factor, "runs": runs}
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
