"""`tuneloop bench`: raw forward vs the served api vs a naive server, side by side in one run.

Everything happens under a temporary TUNELOOP_HOME (SQLite store, artifacts): the default zero-shot
model is built once; the raw loop runs in this process; the api (`tuneloop serve`, prediction log
and metrics on) and the naive baseline (`tuneloop.naive`) each run alone as a subprocess, driven
over HTTP by `tuneloop.loadgen` in its own process, one text per request.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tuneloop.loadgen import review_texts

Progress = Callable[[str], None]
# Shared settings that would point the bench at the user's state; component settings are kept.
_ISOLATED = ("TUNELOOP_HOME", "TUNELOOP_DATABASE_URL", "TUNELOOP_ARTIFACT_DIR", "TUNELOOP_ENV")


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and for how long."""

    duration: float = 8.0
    warmup: float = 2.0
    raw_seconds: float = 3.0
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    n_texts: int = 512
    ratio_concurrency: int = 32
    served_concurrency: tuple[int, ...] = (32, 64)


def run_bench(config: BenchConfig, progress: Progress) -> dict[str, Any]:
    """Run the whole benchmark and return its JSON-ready result."""
    load_before = os.getloadavg()
    texts = review_texts(config.n_texts)
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-") as tmp:
        home = Path(tmp)
        progress(f"home {home}; building the default zero-shot model")
        artifact = build_model(home)
        raw, threads = measure_raw(artifact, texts, config, progress)
        env = bench_env(home)
        api = [sys.executable, "-m", "tuneloop.cli", "serve", "--port"]
        served, rss = measure_server("api", api, "/readyz", env, config, progress)
        naive_cmd = [sys.executable, "-m", "uvicorn", "tuneloop.naive:app_from_env", "--factory"]
        naive_cmd += ["--no-access-log", "--log-level", "warning", "--port"]
        naive_env = {**env, "TUNELOOP_NAIVE_MODEL": str(artifact)}
        naive, _ = measure_server("naive", naive_cmd, "/healthz", naive_env, config, progress)
    machine = machine_info(threads, load_before)
    return assemble(raw, served, naive, api_rss_mb=rss, machine=machine, config=config)


def build_model(home: Path) -> Path:
    """Create v1 (zero-shot) as champion under `home`; returns its artifact folder."""
    from core.registry import Registry
    from core.settings import get_settings
    from core.store.db import Database, upgrade
    from tuneloop.bootstrap import init_zero_shot, parse_labels

    settings = get_settings(
        home=home, database_url=_sqlite_url(home), artifact_dir=home / "artifacts"
    )
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        result = init_zero_shot(settings, Registry(db, settings.artifacts), labels=parse_labels(()))
    finally:
        db.dispose()
    assert result.version is not None
    return Path(result.version.artifact_path)


def measure_raw(
    artifact: Path, texts: list[str], config: BenchConfig, progress: Progress
) -> tuple[dict[int, float], int]:
    """Texts per second of tokenize + forward in this process, per batch size."""
    import torch

    from core.runtime.predictor import load_predictor

    predictor = load_predictor(artifact, version="raw", device="cpu")
    results: dict[int, float] = {}
    for size in config.batch_sizes:
        results[size] = _raw_rate(predictor.predict, texts, size, config.raw_seconds)
        progress(f"raw batch {size:>2}: {results[size]:7.1f} texts/s")
    return results, torch.get_num_threads()


def _raw_rate(
    predict: Callable[[list[str]], object], texts: list[str], size: int, seconds: float
) -> float:
    predict(texts[:size])  # warm-up
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        start = done % (len(texts) - size)
        predict(texts[start : start + size])
        done += size
    return round(done / elapsed, 1)


def measure_server(
    name: str,
    command: list[str],
    ready_path: str,
    env: dict[str, str],
    config: BenchConfig,
    progress: Progress,
) -> tuple[dict[int, dict[str, Any]], float]:
    """Start a server alone, drive it at each concurrency; returns the levels and its RSS in MB."""
    home = Path(env["TUNELOOP_HOME"])
    with _server(command, ready_path, env, home / f"{name}.log") as (port, pid):
        progress(f"{name} ready on port {port} (pid {pid})")
        levels: dict[int, dict[str, Any]] = {}
        for concurrency in config.concurrency:
            levels[concurrency] = run_loadgen(port, concurrency, config)
            progress(f"{name} c={concurrency:>2}: {_level_line(levels[concurrency])}")
        return levels, rss_mb(pid)


def run_loadgen(port: int, concurrency: int, config: BenchConfig) -> dict[str, Any]:
    """One level, measured by the load generator in its own process."""
    command = [sys.executable, "-m", "tuneloop.loadgen", "--port", str(port)]
    command += ["--concurrency", str(concurrency), "--texts", str(config.n_texts)]
    command += ["--warmup", str(config.warmup), "--duration", str(config.duration)]
    timeout = config.warmup + config.duration + 120
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


@contextmanager
def _server(
    command: list[str], ready_path: str, env: dict[str, str], log_path: Path
) -> Iterator[tuple[int, int]]:
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*command, str(port)], env=env, stdout=log, stderr=log)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}{ready_path}", log_path)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (from /proc; 0.0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def bench_env(home: Path) -> dict[str, str]:
    """The servers' environment: the user's, with all shared state pointed at `home`."""
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
    env.update(
        TUNELOOP_HOME=str(home),
        TUNELOOP_DATABASE_URL=_sqlite_url(home),
        TUNELOOP_ARTIFACT_DIR=str(home / "artifacts"),
        HF_HUB_OFFLINE="1",
    )
    return env


def _sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'tuneloop.db'}"


def machine_info(raw_threads: int, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Cores, torch threads and version, and the load average (other work skews the figures)."""
    import torch

    return {
        "cores": os.cpu_count(),
        "torch_threads_raw": raw_threads,
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
    raw: dict[int, float],
    served: dict[int, dict[str, Any]],
    naive: dict[int, dict[str, Any]],
    *,
    api_rss_mb: float,
    machine: dict[str, Any],
    config: BenchConfig,
) -> dict[str, Any]:
    """The result document: headline figures, ratios, target checks and every level."""
    raw_tps = max(raw.values())
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
    result |= {
        "raw_by_batch": {str(k): v for k, v in raw.items()},
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


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def _level_line(level: dict[str, Any]) -> str:
    return (
        f"{level['rps']:7.1f} req/s  p50 {level['p50_ms']:7.1f}  p95 {level['p95_ms']:7.1f}  "
        f"p99 {level['p99_ms']:7.1f} ms  errors {level['errors']}"
    )


def summary_lines(result: dict[str, Any]) -> list[str]:
    """A short human summary of the result."""
    lines = [f"{k}: {result[k]}" for k in list(result)[:9]]
    lines += [f"target {k}: {'ok' if v else 'MISSED'}" for k, v in result["targets"].items()]
    return lines
