"""The overload benchmark's load generator: open-loop arrivals over keep-alive connections, in
one of several processes (`python -m benchmarks.overload_client ...`, started by
`benchmarks.overload`), each writing its raw figures as one JSON object to a file (uvloop leaves
stdout non-blocking, so a large write to a full pipe would be cut short).

Each arrival takes an idle keep-alive connection (or opens one) and sends its text until it is
answered 2xx, retrying a 503 after Retry-After (`honour`) or after 5 ms (`impatient`), and giving
up after `give_up` seconds; a connection the server closes (or says it will) is replaced by a new
one, whose set-up counts in that attempt's answer time. Beside the answers it samples how late
its own event loop wakes (`loop_lag_p99_ms`), the share of a rejection's time that is the load
generator's scheduling rather than the api's, and its CPU use, so a saturated generator is seen.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks.loadgen import _Conn, build_request, parse_response, percentile, review_texts

IMPATIENT_RETRY = 0.005
LAG_TICK = 0.005  # how often the generator checks its own loop's lateness


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
        self.lag_s: list[float] = []
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

    async def sample_lag(self, until: float) -> None:
        """How late each LAG_TICK sleep wakes, until `until`: the generator's own delay."""
        while (asked := time.perf_counter()) < until:
            await asyncio.sleep(LAG_TICK)
            self.lag_s.append(time.perf_counter() - asked - LAG_TICK)


def arrivals(
    rate: float, warmup: float, duration: float, *, client: int = 0, clients: int = 1
) -> Iterator[tuple[float, bool]]:
    """(seconds after the start, in the measured window) of each arrival `client` of `clients`
    makes: together they arrive every 1/`rate` s, each process every `clients`/`rate`, offset by
    its index, so the processes' arrivals interleave evenly."""
    for n in itertools.count():
        due = (n * clients + client) / rate
        if due > warmup + duration:
            return
        yield due, due >= warmup


async def drive(
    port: int,
    rate: float,
    *,
    honour: bool,
    warmup: float,
    duration: float,
    give_up: float,
    client: int = 0,
    clients: int = 1,
) -> dict[str, Any]:
    """This process's share of arrivals at `rate` per second for warm-up + duration; the raw
    figures of the measured window (`summarise` makes the report of one or more)."""
    load = _Load(port, honour=honour, give_up=give_up)
    payloads = itertools.cycle(
        [build_request("127.0.0.1", port, "/v1/predict", t) for t in review_texts(512)]
    )
    jobs: set[asyncio.Task[None]] = set()
    start, cpu = time.perf_counter(), time.process_time()
    lag = asyncio.create_task(load.sample_lag(start + warmup + duration))
    for due, measured in arrivals(rate, warmup, duration, client=client, clients=clients):
        await asyncio.sleep(max(0.0, start + due - time.perf_counter()))
        task = asyncio.create_task(load.job(next(payloads), measured))
        jobs.add(task)
        task.add_done_callback(jobs.discard)
    await asyncio.gather(lag, *jobs)
    for conn in load.idle:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "honour": honour,
        "rate": rate / clients,
        "duration": duration,
        "done": load.done,
        "gave_up": load.gave_up,
        "statuses": {str(k): v for k, v in load.statuses.items()},
        "rejected_s": load.rejected_s,
        "admitted_s": load.admitted_s,
        "lag_s": load.lag_s,
        "opened": load.opened,
        "most_open": load.most_open,
        "cpu_cores": (time.process_time() - cpu) / (time.perf_counter() - start),
    }


def summarise(raws: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of the raw figures of every client process of one run."""
    rejected = sorted(s for raw in raws for s in raw["rejected_s"])
    admitted = sorted(s for raw in raws for s in raw["admitted_s"])
    lag = sorted(s for raw in raws for s in raw["lag_s"])
    statuses: Counter[str] = Counter()
    for raw in raws:
        statuses.update(raw["statuses"])
    duration, honour = raws[0]["duration"], raws[0]["honour"]
    return {
        "clients": "honour Retry-After" if honour else f"retry after {IMPATIENT_RETRY * 1000:g} ms",
        "client_processes": len(raws),
        "offered_per_s": round(sum(raw["rate"] for raw in raws), 1),
        "goodput_per_s": round(sum(raw["done"] for raw in raws) / duration, 1),
        "gave_up": sum(raw["gave_up"] for raw in raws),
        "statuses": {k: v for k, v in sorted(statuses.items(), key=lambda kv: int(kv[0]))},
        "rejection_p99_ms": round(percentile(rejected, 0.99) * 1000, 2),
        "admitted_p50_ms": round(percentile(admitted, 0.50) * 1000, 1),
        "admitted_p99_ms": round(percentile(admitted, 0.99) * 1000, 1),
        "client_loop_lag_p99_ms": round(percentile(lag, 0.99) * 1000, 2),
        # each process's CPU over its run, busiest first: near 1.0 is a saturated generator
        "client_cpu_cores": sorted((round(raw["cpu_cores"], 2) for raw in raws), reverse=True),
        "connections_opened": sum(raw["opened"] for raw in raws),
        # the sum of each process's most: an upper bound of the most open at once
        "connections_most_open": sum(raw["most_open"] for raw in raws),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: one client process's share of a run, its raw figures as JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="Arrivals/s of all processes.")
    parser.add_argument("--client", type=int, default=0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--honour", action="store_true")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--give-up", type=float, default=10.0)
    parser.add_argument("--out", type=Path, required=True, help="Where the JSON goes.")
    args = parser.parse_args(argv)
    import uvloop

    raw = uvloop.run(
        drive(
            args.port,
            args.rate,
            honour=args.honour,
            warmup=args.warmup,
            duration=args.duration,
            give_up=args.give_up,
            client=args.client,
            clients=args.clients,
        )
    )
    args.out.write_bytes(orjson.dumps(raw))


if __name__ == "__main__":
    main()
