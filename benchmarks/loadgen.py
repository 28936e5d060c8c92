"""A lean HTTP/1.1 load generator: keep-alive connections over raw asyncio sockets (uvloop).

Each of `concurrency` connections sends one POST, waits for the whole answer, and sends the next;
latencies of answers that started after the warm-up are kept. It runs in its own process
(`python -m benchmarks.loadgen ...`) and prints one JSON object, so its CPU is not the server's.
httpx would spend more CPU per request than the server does on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import cast

import orjson

_OPENERS = ("I bought this", "We got the", "My wife ordered the", "Last month I tried the", "Our")
_THINGS = ("blender", "headphones", "phone case", "backpack", "coffee maker", "desk lamp", "kettle")
_GOOD = ("works perfectly", "is sturdy and quiet", "exceeded my expectations", "looks great")
_BAD = ("broke after two days", "stopped charging", "feels cheap and flimsy", "arrived scratched")
_CLOSERS = (
    "and I would happily buy it again.",
    "so I asked for a refund right away.",
    "and shipping was quick enough for me.",
    "but the price seems a bit high overall.",
)


def review_texts(n: int, seed: int = 7) -> list[str]:
    """`n` short English product reviews (~20 tokens each), the same for the same seed."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        verdict = rng.choice(_GOOD if rng.random() < 0.5 else _BAD)
        texts.append(
            f"{rng.choice(_OPENERS)} {rng.choice(_THINGS)} and it {verdict}, {rng.choice(_CLOSERS)}"
        )
    return texts


def build_request(host: str, port: int, path: str, text: str) -> bytes:
    """One keep-alive POST of `{"inputs": text}`."""
    body = orjson.dumps({"inputs": text})
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def parse_response(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(status, bytes consumed) of the first complete response in `buf`; None if incomplete.

    Only Content-Length framing is supported (what uvicorn sends for fixed bodies).
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).split(b"\r\n")
    parts = head[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {head[0]!r}")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not supported")
    total = end + 4 + length
    return (int(parts[1]), total) if len(buf) >= total else None


def percentile(sorted_values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of sorted values, nearest rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


class _Conn(asyncio.Protocol):
    """One keep-alive connection that answers `wait()` with each response's status."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is not None and self.waiter is not None and not self.waiter.done():
            del self.buf[: parsed[1]]
            self.waiter.set_result(parsed[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("server closed the connection"))

    def request(self, payload: bytes) -> asyncio.Future[int]:
        """Send one request; the future gets the response's status."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.waiter


async def _client(
    port: int,
    payloads: Iterator[bytes],
    start: float,
    stop: float,
    out: list[float],
    codes: Counter[int],
) -> None:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
    clock = time.perf_counter
    while (sent := clock()) < stop:
        try:
            status = await conn.request(next(payloads))
        except ConnectionError:  # counted as status 0; carry on with a new connection
            status = 0
            _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        if sent >= start:
            out.append(clock() - sent)
            codes[status] += 1
    assert conn.transport is not None
    conn.transport.close()


async def run_level(
    port: int, path: str, texts: list[str], *, concurrency: int, warmup: float, duration: float
) -> dict[str, object]:
    """Drive `concurrency` connections for warm-up + duration; returns req/s and latencies."""
    payloads = itertools.cycle([build_request("127.0.0.1", port, path, t) for t in texts])
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    start = time.perf_counter() + warmup
    stop = start + duration
    cpu = sum(os.times()[:2])
    await asyncio.gather(
        *(_client(port, payloads, start, stop, latencies, codes) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - start
    result = summarize(latencies, codes, concurrency=concurrency, elapsed=elapsed)
    result["client_cpu_cores"] = round((sum(os.times()[:2]) - cpu) / (warmup + elapsed), 2)
    return result


def summarize(
    latencies: list[float], codes: Counter[int], *, concurrency: int, elapsed: float
) -> dict[str, object]:
    """One level's figures: requests per second of 2xx answers and latency percentiles in ms."""
    ok = sum(n for code, n in codes.items() if 200 <= code < 300)
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(latencies) - ok,
        "statuses": {str(k): v for k, v in sorted(codes.items())},
        "rps": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: run one level and print its JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/predict")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--texts", type=int, default=512)
    args = parser.parse_args(argv)
    import uvloop

    result = uvloop.run(
        run_level(
            args.port,
            args.path,
            review_texts(args.texts),
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
        )
    )
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
