"""The generation benchmark's pure parts: prompts, SSE framing, the figures and the targets."""

from __future__ import annotations

from pathlib import Path

import orjson

from benchmarks.genclient import SseParser, StreamResult, openai_chunk, summarize
from benchmarks.generate_report import same_share, targets
from benchmarks.genprompts import INSTRUCTION, abstracts, fit_prompt, synthetic_abstract


def _words(prompt: str) -> int:
    return len(prompt.split())


def test_fit_prompt_keeps_the_longest_word_prefix_within_the_limit() -> None:
    abstract = " ".join(f"w{i}" for i in range(100))
    fitted = fit_prompt(abstract, _words, limit=40)
    assert fitted.startswith(INSTRUCTION)
    assert _words(fitted) == 40  # the instruction's 4 words and 36 of the abstract
    assert fitted.endswith(" w35")
    assert fit_prompt("short abstract", _words, limit=40) == INSTRUCTION + "short abstract"


def test_abstracts_join_scitldr_sentences_and_fall_back_to_synthetic(tmp_path: Path) -> None:
    data = tmp_path / "test.jsonl"
    rows = [{"source": ["One.", "Two."], "target": ["x"]}, {"source": ["Three."]}]
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    assert abstracts(data, 1) == (["One. Two."], f"scitldr:{data}")
    texts, source = abstracts(tmp_path / "missing.jsonl", 3)
    assert source == "synthetic"
    assert texts == [synthetic_abstract(i) for i in range(3)]
    assert len(set(texts)) == 3


def test_sse_parser_frames_events_split_anywhere() -> None:
    stream = (
        'event: start\ndata: {"id": "a"}\n\n'
        'event: delta\ndata: {"text": "Hi"}\n\n'
        'data: {"choices": []}\r\n\r\n'
        "data: [DONE]\n\n"
    )
    parser = SseParser()
    events = [e for i in range(0, len(stream), 7) for e in parser.feed(stream[i : i + 7])]
    assert events == [
        ("start", '{"id": "a"}'),
        ("delta", '{"text": "Hi"}'),
        ("message", '{"choices": []}'),
        ("message", "[DONE]"),
    ]


def test_openai_chunks_count_tokens_unless_usage_says() -> None:
    result = StreamResult(sent=0.0)
    openai_chunk(result, {"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    openai_chunk(result, {"choices": [{"delta": {"content": "Hel"}}]})
    openai_chunk(result, {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]})
    assert (result.text, result.completion_tokens, result.finish_reason) == ("Hello", 2, "stop")
    assert len(result.chunks) == 2
    openai_chunk(result, {"choices": [], "usage": {"completion_tokens": 3}})
    assert result.completion_tokens == 3


def test_summarize_rates_over_the_wall_and_takes_percentiles_of_gaps() -> None:
    a = StreamResult(sent=0.0, chunks=[0.1, 0.15, 0.25], completion_tokens=3)
    b = StreamResult(sent=1.0, chunks=[1.3, 1.4], completion_tokens=2)
    failed = StreamResult(sent=0.0, error="HTTP 503", completion_tokens=9)
    level = summarize([a, b, failed], wall=2.0)
    assert level["tokens_per_s"] == 2.5  # (3 + 2) tokens over 2 s; the failed one not counted
    assert (level["errors"], level["first_error"]) == (1, "HTTP 503")
    assert (level["ttft_ms_p50"], level["ttft_ms_p99"]) == (100.0, 300.0)
    assert (level["itl_ms_p50"], level["itl_ms_p99"]) == (100.0, 100.0)  # gaps 50, 100, 100


def test_targets_compare_served_with_raw_and_llamacpp() -> None:
    raw = {"tokens_per_s": 40.0, "ttft_ms_p50": 300.0}
    level = {"tokens_per_s": 30.0, "ttft_ms_p50": 330.0}
    served = {"levels": {1: level, 8: {**level, "tokens_per_s": 38.0}, 32: level}}
    checks = targets(raw, served, {"levels": {8: {"tokens_per_s": 38.0}}})
    assert checks["served_over_raw_tps"] == {"value": 0.75, "target": ">= 0.9", "met": False}
    assert checks["ttft_c1_minus_raw_ms"]["value"] == 30.0
    assert checks["ttft_c1_minus_raw_ms"]["met"] is False
    assert checks["served_c8_over_llamacpp_tps"]["met"] is True
    assert targets(raw, served, {"skipped": "absent"})["served_c8_over_llamacpp_tps"]["met"] is None


def test_same_share_compares_row_by_row() -> None:
    assert same_share(["a", "b ", "c"], ["a", "b", "x"]) == 0.667
    assert same_share(None, ["a"]) is None
