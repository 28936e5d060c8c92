"""`python -m benchmarks.overload`: the api at twice its measured peak, with clients that honour
Retry-After and with clients that retry 5 ms after a 503.

The api runs alone as a subprocess (the default zero-shot model, SQLite, one text per request).
First its peak: closed-loop connections (`benchmarks.loadgen`) at `--peak-concurrency`. Then, for
each kind of client, open-loop arrivals at `--factor` times the peak, from a separate process:
each arrival takes an idle keep-alive connection (or opens one) and sends its text until
it is answered 2xx, retrying a 503 after Retry-After (`honour`) or after 5 ms (`impatient`), and
giving up after `--give-up` seconds; a connection the server closes (or says it will) is
replaced by a new one, whose set-up counts in that attempt's answer time. Reported per kind:
goodput (arrivals of the measured window answered 2xx, per second of it) beside the peak, the p99
of a rejection's answer time and of an admitted request's, statuses, connections opened and most
open at once, and the api's resident memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from benchmarks.loadgen import _Conn, build_request, parse_response, percentile, review_texts
from benchmarks.serving import (
    API,
    BenchConfig,
    _server,
    bench_env,
    build_model,
    rss_mb,
    run_loadgen,
)

IMPATIENT_RETRY = 0.005


class _RetryConn(_Conn):
    """A keep-alive connection that also keeps the last answer's Retry-After (seconds, or 0) and
    whether the server has closed it or said it will (`Connection: close`), as HTTP clients do."""

    def __init__(self, load: _Load) -> None:
        super().__init__()
        self.load = load
        self.retry_after = 0.0
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.load.live -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is None or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[: self.buf.find(b"\r\n\r\n")]).lower()
        del self.buf[: parsed[1]]
        retry = 0.0
        if (at := head.find(b"\r\nretry-after:")) >= 0:
            retry = float(head[at + 14 :].split(b"\r\n", 1)[0].strip() or 0)
        self.retry_after = retry
        self.closed = self.closed or b"\r\nconnection: close" in head
        self.waiter.set_result(parsed[0])


class _Load:
    """Open-loop arrivals over a pool of keep-alive connections; the figures of the window."""

    def __init__(self, port: int, *, honour: bool, give_up: float) -> None:
        self.port, self.honour, self.give_up = port, honour, give_up
        self.idle: list[_RetryConn] = []
        self.statuses: Counter[int] = Counter()
        self.rejected_s: list[float] = []
        self.admitted_s: list[float] = []
        self.done = self.gave_up = 0
        self.opened = self.live = self.most_open = 0  # connections opened, open now, most open

    async def _conn(self) -> _RetryConn:
        while self.idle:
            if not (conn := self.idle.pop()).closed:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _RetryConn(self), "127.0.0.1", self.port)
        self.opened, self.live = self.opened + 1, self.live + 1
        self.most_open = max(self.most_open, self.live)
        return conn

    async def job(self, payload: bytes, measured: bool) -> None:
        """One text until answered 2xx or given up; `measured` when it arrived in the window."""
        started = time.perf_counter()
        conn: _RetryConn | None = None
        while True:
            sent = time.perf_counter()  # a new connection's set-up is part of the answer's time
            if conn is None or conn.closed:
                conn = await self._conn()
            try:
                status = await conn.request(payload)
            except ConnectionError:
                status = 0
            answered = time.perf_counter() - sent
            if measured:
                self.statuses[status] += 1
                (self.admitted_s if status == 200 else self.rejected_s).append(answered)
            if status == 200:
                self.done += measured
                break
            if time.perf_counter() - started > self.give_up:
                self.gave_up += measured
                break
            wait = conn.retry_after if self.honour else IMPATIENT_RETRY
            await asyncio.sleep(wait or IMPATIENT_RETRY)
        if not conn.closed:
            self.idle.append(conn)


async def drive(
    port: int, rate: float, *, honour: bool, warmup: float, duration: float, give_up: float
) -> dict[str, Any]:
    """Arrivals at `rate` per second for warm-up + duration; the measured window's figures."""
    load = _Load(port, honour=honour, give_up=give_up)
    payloads = itertools.cycle(
        [build_request("127.0.0.1", port, "/v1/predict", t) for t in review_texts(512)]
    )
    jobs: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for n in itertools.count():
        due = start + n / rate
        if due > start + warmup + duration:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(load.job(next(payloads), due >= start + warmup))
        jobs.add(task)
        task.add_done_callback(jobs.discard)
    await asyncio.gather(*jobs)
    for conn in load.idle:
        if conn.transport is not None:
            conn.transport.close()
    rejected, admitted = sorted(load.rejected_s), sorted(load.admitted_s)
    return {
        "clients": "honour Retry-After" if honour else f"retry after {IMPATIENT_RETRY * 1000:g} ms",
        "offered_per_s": round(rate, 1),
        "goodput_per_s": round(load.done / duration, 1),
        "gave_up": load.gave_up,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "rejection_p99_ms": round(percentile(rejected, 0.99) * 1000, 2),
        "admitted_p50_ms": round(percentile(admitted, 0.50) * 1000, 1),
        "admitted_p99_ms": round(percentile(admitted, 0.99) * 1000, 1),
        "connections_opened": load.opened,
        "connections_most_open": load.most_open,
    }


def _client_main(args: argparse.Namespace) -> None:
    import uvloop

    result = uvloop.run(
        drive(
            args.port,
            args.rate,
            honour=args.honour,
            warmup=args.warmup,
            duration=args.duration,
            give_up=args.give_up,
        )
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


def _overload(
    port: int, pid: int, rate: float, honour: bool, args: argparse.Namespace
) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.overload", "--client", "--port", str(port)]
    command += ["--rate", str(rate), "--warmup", str(args.warmup), "--duration", str(args.duration)]
    command += ["--give-up", str(args.give_up)] + (["--honour"] if honour else [])
    before = rss_mb(pid)
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
        timeout=args.warmup + args.duration + args.give_up + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"overload client failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    result.update(rss_mb_before=before, rss_mb_after=rss_mb(pid))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--honour", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--factor", type=float, default=2.0, help="Offered load over the peak.")
    parser.add_argument("--peak-concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--give-up", type=float, default=10.0, help="A client's patience, s.")
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    args = parser.parse_args(argv)
    if args.client:
        _client_main(args)
        return
    with tempfile.TemporaryDirectory(prefix="tuneloop-overload-") as tmp:
        home = Path(tmp)
        build_model(home)
        with _server(API, "/readyz", bench_env(home), home / "api.log") as (port, pid):
            config = BenchConfig(duration=args.duration, warmup=args.warmup)
            peak = run_loadgen(port, args.peak_concurrency, config)
            print(f"peak: {peak['rps']} texts/s at c={args.peak_concurrency}", file=sys.stderr)
            runs = []
            for honour in (True, False):
                run = _overload(port, pid, args.factor * float(peak["rps"]), honour, args)
                run["goodput_over_peak"] = round(run["goodput_per_s"] / float(peak["rps"]), 3)
                print(orjson.dumps(run).decode(), file=sys.stderr)
                runs.append(run)
    result = {"peak": peak, "factor": args.factor, "runs": runs}
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
