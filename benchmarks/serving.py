"""`tuneloop bench`: raw forward vs the served api vs a naive server, side by side in one run.

Everything happens under a temporary TUNELOOP_HOME (SQLite store, artifacts): the default zero-shot
model is built once; the raw loop runs in this process; the api (`tuneloop serve`, prediction log
and metrics on) and the naive baseline (`benchmarks.naive`) each run alone as a subprocess, driven
over HTTP by `benchmarks.loadgen` in its own process, one text per request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from benchmarks.loadgen import review_texts
from benchmarks.serving_report import assemble, level_line, machine_info, summary_lines
from tuneloop.cli.progress import Steps
from tuneloop.processes import free_port, spawn, stop, tuneloop_command, wait_ready
from tuneloop.wiring import registry_of

API = tuneloop_command(["serve", "--port"])
NAIVE = [sys.executable, "-m", "uvicorn", "benchmarks.naive:app_from_env", "--factory"]
NAIVE += ["--no-access-log", "--log-level", "warning", "--port"]
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


def bench_steps(config: BenchConfig) -> int:
    """The steps `run_bench` takes: the model, each raw batch size, each level of both servers,
    and the raw recheck."""
    return 1 + len(config.batch_sizes) + 2 * len(config.concurrency) + 1


def run_bench(config: BenchConfig, progress: Steps) -> dict[str, Any]:
    """Run the whole benchmark and return its JSON-ready result."""
    load_before = os.getloadavg()
    texts = review_texts(config.n_texts)
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-") as tmp:
        home = Path(tmp)
        progress.note(f"home {home}")
        progress.step("building the default zero-shot model")
        artifact = build_model(home)
        predict = raw_predict(artifact)
        raw = measure_raw(predict, texts, config.batch_sizes, config, progress)
        env = bench_env(home)
        served, rss = measure_server("api", API, "/readyz", env, config, progress)
        best = max(raw, key=lambda size: raw[size]["tps"])  # again, beside the served figures
        recheck = measure_raw(predict, texts, (best,), config, progress)
        naive_env = {**env, "TUNELOOP_NAIVE_MODEL": str(artifact)}
        naive, _ = measure_server("naive", NAIVE, "/healthz", naive_env, config, progress)
    raw_all = {"first": raw, "recheck": recheck}
    machine = machine_info(load_before)
    return assemble(raw_all, served, naive, api_rss_mb=rss, machine=machine, config=config)


def build_model(home: Path) -> Path:
    """Create v1 (zero-shot) as champion under `home`; returns its artifact folder."""
    from core.settings import get_settings
    from core.store.db import Database, upgrade
    from tuneloop.bootstrap import init_zero_shot, parse_labels

    settings = get_settings(
        home=home, database_url=_sqlite_url(home), artifact_dir=home / "artifacts"
    )
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        result = init_zero_shot(settings, registry_of(settings, db), labels=parse_labels(()))
    finally:
        db.dispose()
    assert result.version is not None
    return Path(result.version.artifact_path)


def raw_predict(artifact: Path) -> Callable[[list[str]], object]:
    """The raw loop's step: the runtime's tokenize + forward, as the api loads it."""
    from core.runtime.predictor import load_predictor

    return load_predictor(artifact, version="raw", device="cpu").predict


def measure_raw(
    predict: Callable[[list[str]], object],
    texts: list[str],
    sizes: tuple[int, ...],
    config: BenchConfig,
    progress: Steps,
) -> dict[int, dict[str, float]]:
    """Texts per second of tokenize + forward in this process, per batch size."""
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        progress.step(f"raw batch {size}")
        busy, own, started = busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter()
        tps = _raw_rate(predict, texts, size, config.raw_seconds)
        elapsed = time.perf_counter() - started
        others = (busy_cpu_seconds() - busy - (sum(os.times()[:2]) - own)) / elapsed
        results[size] = {"tps": tps, "other_cpu_cores": round(max(0.0, others), 2)}
        progress.note(f"raw batch {size:>2}: {tps:7.1f} texts/s  others {others:.2f} cores")
    return results


def _raw_rate(
    predict: Callable[[list[str]], object], texts: list[str], size: int, seconds: float
) -> float:
    """Best texts/s over three windows: other work on the machine only ever slows a window."""
    predict(texts[:size])  # warm-up
    best, done = 0.0, 0
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / 3:
            start = done % (len(texts) - size)
            predict(texts[start : start + size])
            done, count = done + size, count + size
        best = max(best, count / elapsed)
    return round(best, 1)


def measure_server(
    name: str,
    command: list[str],
    ready_path: str,
    env: dict[str, str],
    config: BenchConfig,
    progress: Steps,
) -> tuple[dict[int, dict[str, Any]], float]:
    """Start a server alone, drive it at each concurrency; returns the levels and its RSS in MB."""
    home = Path(env["TUNELOOP_HOME"])
    with _server(command, ready_path, env, home / f"{name}.log") as (port, pid):
        progress.note(f"{name} ready on port {port} (pid {pid})")
        levels: dict[int, dict[str, Any]] = {}
        for concurrency in config.concurrency:
            progress.step(f"{name} c={concurrency}")
            levels[concurrency] = measure_level(port, pid, concurrency, config)
            progress.note(f"{name} c={concurrency:>2}: {level_line(levels[concurrency])}")
        return levels, rss_mb(pid)


def measure_level(port: int, pid: int, concurrency: int, config: BenchConfig) -> dict[str, Any]:
    """One level, with the CPU the server, the client and every other process used meanwhile."""
    load, busy = os.getloadavg()[0], busy_cpu_seconds()
    server, started = cpu_seconds(pid), time.perf_counter()
    level = run_loadgen(port, concurrency, config)
    elapsed = time.perf_counter() - started
    level["server_cpu_cores"] = round((cpu_seconds(pid) - server) / elapsed, 2)
    others = (busy_cpu_seconds() - busy) / elapsed - level["server_cpu_cores"]
    level["other_cpu_cores"] = round(max(0.0, others - level["client_cpu_cores"]), 2)
    level["load_avg_1m_before"] = round(load, 2)
    return level


def run_loadgen(port: int, concurrency: int, config: BenchConfig) -> dict[str, Any]:
    """One level, measured by the load generator in its own process."""
    command = [sys.executable, "-m", "benchmarks.loadgen", "--port", str(port)]
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
    proc = spawn([*command, str(port)], env=env, log=log_path)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}{ready_path}", log_path)
        yield port, proc.pid
    finally:
        stop([proc], grace=30)


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 180
) -> None:
    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()[-3000:]}")

    def ready() -> bool:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)

    if not wait_ready(ready, alive=alive, timeout=timeout):
        raise RuntimeError(
            f"server not ready after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}"
        )


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (from /proc; 0.0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc; 0.0 without it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (from /proc/stat; 0.0 without it)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def bench_env(home: Path) -> dict[str, str]:
    """The servers' environment: the user's, with all shared state pointed at `home`, in open mode
    on 127.0.0.1 (the load generators send no key)."""
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
    env.update(
        TUNELOOP_API_HOST="127.0.0.1",
        TUNELOOP_API_OPEN="true",
        TUNELOOP_HOME=str(home),
        TUNELOOP_DATABASE_URL=_sqlite_url(home),
        TUNELOOP_ARTIFACT_DIR=str(home / "artifacts"),
        HF_HUB_OFFLINE="1",
    )
    return env


def _sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'tuneloop.db'}"


@click.command()
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results to this file.",
)
@click.option("--duration", type=float, default=8.0, show_default=True, help="Seconds per level.")
@click.option("--warmup", type=float, default=2.0, show_default=True, help="Warm-up per level.")
@click.option("--raw-seconds", type=float, default=3.0, show_default=True, help="Per batch size.")
@click.option("--concurrency", default="1,8,32,64", show_default=True, help="HTTP levels.")
def main(
    json_path: Path | None, duration: float, warmup: float, raw_seconds: float, concurrency: str
) -> None:
    """Raw forward, the served api and a naive server side by side, in a temporary home."""
    levels = tuple(sorted({int(c) for c in concurrency.split(",") if c.strip()}))
    config = BenchConfig(
        duration=duration, warmup=warmup, raw_seconds=raw_seconds, concurrency=levels
    )
    with Steps("bench", total=bench_steps(config)) as steps:
        result = run_bench(config, steps)
    for line in summary_lines(result):
        click.echo(line)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        click.echo(f"wrote {json_path}")


if __name__ == "__main__":
    main()
