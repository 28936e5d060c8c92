"""The benchmark's pieces that can break silently: HTTP framing, percentiles, the JSON document."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from benchmarks.loadgen import build_request, parse_response, percentile, review_texts, summarize
from benchmarks.overload import offered_rate, refusal_buckets, refusal_figures
from benchmarks.overload_client import arrivals, drive, summarise
from benchmarks.serving import BenchConfig
from benchmarks.serving_report import assemble

ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"a": true}'
)


def test_parse_response_waits_for_the_whole_body_and_reports_what_it_used() -> None:
    assert parse_response(ANSWER[:20]) is None  # head incomplete
    assert parse_response(ANSWER[:-1]) is None  # body one byte short
    assert parse_response(ANSWER) == (200, len(ANSWER))
    pipelined = ANSWER + b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    status, used = parse_response(pipelined) or (0, 0)
    assert (status, used) == (200, len(ANSWER))
    assert parse_response(pipelined[used:]) == (503, len(pipelined) - used)


def test_parse_response_refuses_what_it_cannot_frame() -> None:
    with pytest.raises(ValueError):
        parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
    with pytest.raises(ValueError):
        parse_response(b"garbage\r\n\r\n")


def test_request_is_a_keep_alive_post_with_an_exact_content_length() -> None:
    request = build_request("127.0.0.1", 8000, "/v1/predict", 'she said "great"')
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/predict HTTP/1.1\r\n")
    assert b"connection: close" not in head.lower()
    assert f"Content-Length: {len(body)}".encode() in head
    assert orjson.loads(body) == {"inputs": 'she said "great"'}


def test_texts_are_deterministic_short_reviews() -> None:
    texts = review_texts(50)
    assert texts == review_texts(50) and len(set(texts)) > 25
    assert all(10 <= len(t.split()) <= 25 for t in texts)


def test_percentiles_and_level_summary() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(values, 0.5) == 0.050 and percentile(values, 0.99) == 0.099
    assert percentile([], 0.5) == 0.0
    level = summarize(values, Counter({200: 98, 503: 2}), concurrency=8, elapsed=2.0)
    assert level["rps"] == 49.0  # only 2xx answers count
    assert level["errors"] == 2 and level["p50_ms"] == 50.0 and level["p99_ms"] == 99.0


def _level(concurrency: int, rps: float, p50: float, p99: float) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "rps": rps,
        "p50_ms": p50,
        "p95_ms": p99,
        "p99_ms": p99,
        "other_cpu_cores": 0.0,
    }


def test_assemble_computes_headline_ratios_and_target_checks() -> None:
    served = {
        1: _level(1, 90, 9.0, 12),
        32: _level(32, 290, 100, 200),
        64: _level(64, 300, 200, 450),
    }
    naive = {1: _level(1, 100, 8.0, 10), 32: _level(32, 70, 400, 600), 64: _level(64, 60, 900, 1e3)}
    first = {
        k: {"tps": v, "other_cpu_cores": 0.0} for k, v in {1: 80.0, 32: 300.0, 64: 290.0}.items()
    }
    raw = {"first": first, "recheck": {32: {"tps": 320.0, "other_cpu_cores": 0.0}}}  # the best
    config = BenchConfig(concurrency=(1, 32, 64))
    result = assemble(raw, served, naive, api_rss_mb=800.0, machine={"cores": 2}, config=config)
    assert result["raw_tps"] == 320.0 and result["served_tps"] == 300
    assert result["naive_tps"] == 100
    assert result["served_over_raw"] == round(300 / 320, 3)
    assert result["served_over_naive"] == round(290 / 70, 3)  # at concurrency 32
    assert (result["idle_p50_ms"], result["naive_idle_p50_ms"]) == (9.0, 8.0)
    assert result["served_p99_ms_at_max"] == 450
    assert all(result["targets"].values()) and result["warnings"] == []
    assert (
        result["raw_by_batch"]["32"]["tps"] == 300.0 and result["raw_recheck"]["32"]["tps"] == 320
    )
    assert [level["concurrency"] for level in result["served"]] == [1, 32, 64]
    orjson.dumps(result)  # JSON-ready as it is

    slow = {**served, 1: _level(1, 60, 10.5, 20), 64: _level(64, 300, 200, 700)}
    slow[64]["other_cpu_cores"] = 0.8  # someone else's job took most of a core meanwhile
    result = assemble(raw, slow, naive, api_rss_mb=1300.0, machine={}, config=config)
    missed = result["targets"]
    assert not missed["idle_p50<=naive+2ms"] and not missed["p99_at_max<=500ms"]
    assert not missed["api_rss<=1200MB"] and missed["served_over_naive>=3.5"]
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("api c=64")


class _Refuser:
    """An HTTP server that answers a body it has not seen before 503 (Retry-After 0.1 s) and a
    repeated one 200, noting the gap between a 503 and the next request on its connection."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.gaps: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refused_at = None
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            if refused_at is not None:
                self.gaps.append(time.perf_counter() - refused_at)
                refused_at = None
            if body not in self.seen:
                self.seen.add(body)
                refused_at = time.perf_counter()
                writer.write(b"HTTP/1.1 503 X\r\nRetry-After: 0.1\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        writer.close()


@pytest.mark.parametrize("honour", [True, False])
async def test_the_overload_clients_retry_a_503_as_their_kind_does(honour: bool) -> None:
    refuser = _Refuser()
    server = await asyncio.start_server(refuser.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        raw = await drive(port, 20, honour=honour, warmup=0.0, duration=0.5, give_up=5)
    result = summarise([raw])
    assert result["statuses"]["200"] == result["statuses"]["503"] > 0
    assert result["goodput_per_s"] == result["statuses"]["200"] / 0.5
    assert refuser.gaps and all((gap >= 0.09) == honour for gap in refuser.gaps)


def test_a_fixed_rate_is_offered_as_given_and_the_factor_otherwise() -> None:
    assert offered_rate(150.0, 2.0, peak=40.0) == 150.0  # the same load whatever the peak
    assert offered_rate(0.0, 2.0, peak=40.0) == 80.0


def test_client_processes_interleave_their_arrivals_at_the_rate_together() -> None:
    one = list(arrivals(10.0, warmup=0.5, duration=1.0))
    assert [round(t, 3) for t, _ in one] == [round(n / 10, 3) for n in range(16)]
    assert [measured for _, measured in one] == [False] * 5 + [True] * 11
    shares = [list(arrivals(10.0, 0.5, 1.0, client=k, clients=3)) for k in range(3)]
    merged = sorted(t for share in shares for t, _ in share)
    assert [round(t, 3) for t in merged] == [round(t, 3) for t, _ in one]
    assert [round(t, 3) for t, _ in shares[1][:3]] == [0.1, 0.4, 0.7]  # every 3/rate, offset


def test_summarise_merges_the_client_processes() -> None:
    def raw(rate: float, rejected: list[float], statuses: dict[str, int]) -> dict[str, Any]:
        return {"honour": False, "rate": rate, "duration": 2.0, "done": 4, "gave_up": 1,
                "statuses": statuses, "rejected_s": rejected, "admitted_s": [0.1], "lag_s": [0.0],
                "opened": 3, "most_open": 2, "cpu_cores": 0.5}  # fmt: skip

    result = summarise([raw(5, [0.001] * 98, {"200": 4}), raw(5, [0.2, 0.3], {"503": 2})])
    assert result["offered_per_s"] == 10 and result["goodput_per_s"] == 4.0
    assert result["statuses"] == {"200": 4, "503": 2} and result["gave_up"] == 2
    assert result["rejection_p99_ms"] == 200.0  # over both processes' 100 rejections
    assert result["connections_opened"] == 6 and result["client_cpu_cores"] == [0.5, 0.5]


def test_the_apis_refusal_time_is_read_from_its_histogram_between_two_readings() -> None:
    def text(counts: list[int], total: float) -> str:
        name = "tuneloop_api_protocol_refusal_seconds"
        bounds = ["0.0001", "0.001", "0.01", "+Inf"]
        lines = [f'{name}_bucket{{le="{b}"}} {n}.0' for b, n in zip(bounds, counts, strict=True)]
        tail = [f"{name}_count {counts[-1]}.0", f"{name}_sum {total}"]
        return "\n".join(["# HELP x", *lines, *tail])

    before = refusal_buckets(text([10, 10, 10, 10], 0.0005))
    after = refusal_buckets(text([10, 100, 110, 110], 0.0905))
    figures = refusal_figures(before, after)
    assert figures["api_refusals"] == 100
    assert figures["api_refusal_mean_ms"] == 0.9  # (0.0905 - 0.0005) s over 100
    assert figures["api_refusal_p99_le_ms"] == 10.0  # 90 of 100 under 1 ms, all under 10
    assert refusal_figures({}, refusal_buckets("# an older tree\n"))["api_refusals"] is None


def test_the_complementary_term_pushes_the_rejected_label_down() -> None:
    import torch

    from benchmarks.not_this import fit_head

    generator = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 8, generator=generator), dim=1)
    y = torch.randint(0, 3, (60,), generator=generator)
    rejected_x = torch.nn.functional.normalize(torch.randn(20, 8, generator=generator), dim=1)
    rejected = torch.zeros(20, dtype=torch.long)  # users said "not class 0"
    plain = fit_head(x, y, 3, steps=100)
    taught = fit_head(x, y, 3, not_x=rejected_x, not_y=rejected, weight=1.0, steps=100)
    with torch.no_grad():
        p_plain = torch.softmax(plain(rejected_x) * 20.0, dim=-1)[:, 0].mean()
        p_taught = torch.softmax(taught(rejected_x) * 20.0, dim=-1)[:, 0].mean()
    assert p_taught < p_plain / 2


def test_the_raw_loop_shows_a_step_per_batch_size_and_its_result() -> None:
    import io

    from benchmarks.serving import bench_steps, measure_raw
    from tuneloop.cli.progress import Steps

    config = BenchConfig(raw_seconds=0.03, batch_sizes=(1, 2), concurrency=(1, 8))
    assert bench_steps(config) == 1 + 2 + 2 * 2 + 1
    log = io.StringIO()
    with Steps("bench", total=2, stream=log) as steps:
        measure_raw(lambda texts: None, review_texts(8), config.batch_sizes, config, steps)
    lines = log.getvalue().splitlines()
    assert len(lines) == 5 and "\r" not in log.getvalue()
    assert "0/2" in lines[0] and lines[0].endswith("raw batch 1]")
    assert lines[1].startswith("raw batch  1:") and "texts/s" in lines[1]
    assert "1/2" in lines[2] and lines[2].endswith("raw batch 2]")
    assert lines[4].startswith("bench: 100%")
