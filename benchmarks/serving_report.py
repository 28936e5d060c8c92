"""The benchmark's result document: headline figures, ratios, issue 2's targets, the machine."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.serving import BenchConfig

# CPU that other processes may take during a measurement before its figures are suspect.
BUSY_CORES = 0.25


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Cores, torch threads and version, and the load average (other work skews the figures)."""
    import torch

    return {
        "cores": os.cpu_count(),
        "torch_threads_raw": torch.get_num_threads(),
        "api_torch_threads_setting": os.environ.get("TUNELOOP_API_TORCH_THREADS", "default"),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def assemble(
    raw: dict[str, dict[int, dict[str, float]]],
    served: dict[int, dict[str, Any]],
    naive: dict[int, dict[str, Any]],
    *,
    api_rss_mb: float,
    machine: dict[str, Any],
    config: BenchConfig,
) -> dict[str, Any]:
    """The result document: headline figures, ratios, target checks and every level.

    `raw` holds the raw loop per batch size, measured first and rechecked (the best batch size)
    beside the served figures; the higher rate counts, so a slow patch never flatters the api.
    """
    raw_tps = max(r["tps"] for runs in raw.values() for r in runs.values())
    top = max(served)
    served_tps = max(served[c]["rps"] for c in (*config.served_concurrency, top) if c in served)
    at = config.ratio_concurrency if config.ratio_concurrency in served else top
    result = {
        "raw_tps": raw_tps,
        "served_tps": served_tps,
        "naive_tps": max(level["rps"] for level in naive.values()),
        "served_over_raw": _ratio(served_tps, raw_tps),
        "served_over_naive": _ratio(served[at]["rps"], naive[at]["rps"]),
        "idle_p50_ms": served[min(served)]["p50_ms"],
        "naive_idle_p50_ms": naive[min(naive)]["p50_ms"],
        "served_p99_ms_at_max": served[top]["p99_ms"],
        "api_rss_mb": api_rss_mb,
    }
    result["targets"] = check_targets(result)
    result["warnings"] = interference(raw, served, naive)
    result |= {
        "raw_by_batch": {str(k): v for k, v in raw["first"].items()},
        "raw_recheck": {str(k): v for k, v in raw.get("recheck", {}).items()},
        "served": [served[c] for c in sorted(served)],
        "naive": [naive[c] for c in sorted(naive)],
        "machine": machine,
        "config": asdict(config),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return result


def check_targets(r: dict[str, Any]) -> dict[str, bool]:
    """Issue 2's targets, judged on ratios measured in the same run."""
    return {
        "served_over_raw>=0.90": r["served_over_raw"] >= 0.90,
        "p99_at_max<=500ms": r["served_p99_ms_at_max"] <= 500.0,
        "served_over_naive>=3.5": r["served_over_naive"] >= 3.5,
        "idle_p50<=naive+2ms": r["idle_p50_ms"] <= r["naive_idle_p50_ms"] + 2.0,
        "api_rss<=1200MB": 0.0 < r["api_rss_mb"] <= 1200.0,
    }


def interference(
    raw: dict[str, dict[int, dict[str, float]]],
    served: dict[int, dict[str, Any]],
    naive: dict[int, dict[str, Any]],
) -> list[str]:
    """Measurements during which other processes took CPU: their figures are not comparable."""
    busy = [
        (f"raw {run} batch {k}", v["other_cpu_cores"])
        for run, r in raw.items()
        for k, v in r.items()
    ]
    busy += [(f"api c={k}", v["other_cpu_cores"]) for k, v in served.items()]
    busy += [(f"naive c={k}", v["other_cpu_cores"]) for k, v in naive.items()]
    return [
        f"{name}: other processes used {cores:.2f} cores; rerun on a quiet machine"
        for name, cores in busy
        if cores > BUSY_CORES
    ]


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def level_line(level: dict[str, Any]) -> str:
    """One concurrency level as a progress line."""
    return (
        f"{level['rps']:7.1f} req/s  p50 {level['p50_ms']:7.1f}  p95 {level['p95_ms']:7.1f}  "
        f"p99 {level['p99_ms']:7.1f} ms  errors {level['errors']}  "
        f"cpu {level['server_cpu_cores']:.2f} + client {level['client_cpu_cores']:.2f} "
        f"+ others {level['other_cpu_cores']:.2f} cores"
    )


def summary_lines(result: dict[str, Any]) -> list[str]:
    """A short human summary of the result."""
    lines = [f"{k}: {result[k]}" for k in list(result)[:9]]
    lines += [f"target {k}: {'ok' if v else 'MISSED'}" for k, v in result["targets"].items()]
    lines += [f"warning: {w}" for w in result["warnings"]]
    return lines
