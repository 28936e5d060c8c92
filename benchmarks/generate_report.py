"""The generation benchmark's result document: every level, the ratios issue 21 targets, a table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.serving_report import machine_info

# Issue 21's serving targets.
SERVED_RAW_MIN = 0.9  # served/raw output tokens/s at concurrency 32
TTFT_SLACK_MS = 20.0  # served TTFT at concurrency 1 within raw + this
LLAMACPP_MIN = 1.0  # served/llama.cpp output tokens/s at concurrency 8


def assemble(
    *,
    raw: dict[str, Any],
    served: dict[str, Any],
    llamacpp: dict[str, Any],
    outputs: dict[str, list[str] | None],
    setup: dict[str, Any],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    """The result: setup, raw, served and llama.cpp figures, target checks, output agreement."""
    return {
        "setup": setup,
        "raw": raw,
        "tuneloop": served,
        "llamacpp": llamacpp,
        "targets": targets(raw, served, llamacpp),
        "same_text_as_raw": {
            name: same_share(outputs["raw"], texts)
            for name, texts in outputs.items()
            if name != "raw" and texts
        },
        "machine": machine_info(load_before),
    }


def targets(
    raw: dict[str, Any], served: dict[str, Any], llamacpp: dict[str, Any]
) -> dict[str, Any]:
    """Each target with its measured value and whether it holds (None: not measured)."""
    levels = served["levels"]
    anchor = llamacpp.get("levels", {})
    top = levels.get(32) or levels[max(levels)]
    ratio = top["tokens_per_s"] / raw["tokens_per_s"]
    ttft = levels[1]["ttft_ms_p50"] if 1 in levels else None
    versus = (
        levels[8]["tokens_per_s"] / anchor[8]["tokens_per_s"]
        if 8 in levels and anchor.get(8, {}).get("tokens_per_s")
        else None
    )
    return {
        "served_over_raw_tps": _check(ratio, ratio >= SERVED_RAW_MIN, f">= {SERVED_RAW_MIN}"),
        "ttft_c1_minus_raw_ms": _check(
            None if ttft is None else ttft - raw["ttft_ms_p50"],
            None if ttft is None else ttft - raw["ttft_ms_p50"] <= TTFT_SLACK_MS,
            f"<= {TTFT_SLACK_MS}",
        ),
        "served_c8_over_llamacpp_tps": _check(
            versus, None if versus is None else versus >= LLAMACPP_MIN, f">= {LLAMACPP_MIN}"
        ),
    }


def _check(value: float | None, met: bool | None, target: str) -> dict[str, Any]:
    return {"value": None if value is None else round(value, 3), "target": target, "met": met}


def same_share(reference: list[str] | None, texts: list[str]) -> float | None:
    """Share of outputs identical (whitespace-trimmed) to the reference's, row by row."""
    if not reference or len(reference) != len(texts):
        return None
    same = sum(a.strip() == b.strip() for a, b in zip(reference, texts, strict=True))
    return round(same / len(texts), 3)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process in MB (VmHWM; 0.0 without /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def level_line(level: dict[str, Any]) -> str:
    """One level's figures on one line (progress output)."""
    line = (
        f"{level['tokens_per_s']:6.1f} tok/s  ttft p50 {level['ttft_ms_p50']:7.1f} "
        f"p99 {level['ttft_ms_p99']:7.1f} ms  itl p50 {level['itl_ms_p50']:6.1f} "
        f"p99 {level['itl_ms_p99']:6.1f} ms  others {level.get('other_cpu_cores', 0):.2f} cores"
    )
    if level["errors"]:
        line += f"  {level['errors']} errors ({level['first_error']})"
    return line


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The table and the target checks, as printed at the end."""
    raw = result["raw"]
    lines = [
        f"{result['setup']['n']} prompts ({result['setup']['prompts']}), "
        f"{result['setup']['max_new_tokens']} new tokens, {os.cpu_count()} cores",
        f"{'system':<12}{'c':>4}{'tok/s':>8}{'ttft p50':>10}{'ttft p99':>10}"
        f"{'itl p50':>9}{'itl p99':>9}{'peak MB':>9}",
        f"{'raw b=8':<12}{'-':>4}{raw['tokens_per_s']:>8.1f}{raw['ttft_ms_p50']:>10.1f}"
        f"{'-':>10}{'-':>9}{'-':>9}{raw['peak_rss_mb']:>9.0f}",
    ]
    for name in ("tuneloop", "llamacpp"):
        system = result[name]
        for c, lv in system.get("levels", {}).items():
            lines.append(
                f"{name:<12}{c:>4}{lv['tokens_per_s']:>8.1f}{lv['ttft_ms_p50']:>10.1f}"
                f"{lv['ttft_ms_p99']:>10.1f}{lv['itl_ms_p50']:>9.1f}{lv['itl_ms_p99']:>9.1f}"
                f"{system['peak_rss_mb']:>9.0f}"
            )
        if "skipped" in system:
            lines.append(f"{name:<12} skipped: {system['skipped']}")
    for name, check in result["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        lines.append(f"{name}: {check['value']} (target {check['target']}): {verdict}")
    return lines
