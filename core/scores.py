"""A classifier's stored scores, compact: the top-k label/score pairs exact, every score as
float16 in label order.

At 150 labels the `{label: score}` dict is most of a prediction row's JSON (~6 KB): label names
and 17-digit floats on every row. The version's label list is already on its version row, so a
row keeps only a fingerprint of the order its scores are in; a reader whose labels no longer
match the fingerprint still gets the top-k. float16 keeps three significant digits, more than
any reader of a stored score needs; the label and confidence columns keep full precision.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

TOP_K = 5
PACKED = "packed_scores"


def label_order(labels: list[str]) -> str:
    """A short fingerprint of a label order."""
    return hashlib.sha256("\n".join(labels).encode()).hexdigest()[:12]


def pack_scores(scores: dict[str, float]) -> dict[str, Any]:
    """The compact form of a score dict (see the module docstring)."""
    labels = list(scores)
    top = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:TOP_K]
    vector = struct.pack(f"<{len(labels)}e", *scores.values())
    return {
        "top": [[label, score] for label, score in top],
        "f16": base64.b64encode(vector).decode("ascii"),
        "order": label_order(labels),
    }


def unpack_scores(packed: dict[str, Any], labels: list[str]) -> dict[str, float]:
    """The score dict back, in label order (the top-k exact); only the top-k when `labels` are
    not the ones the scores were packed in."""
    top = {str(label): float(score) for label, score in packed["top"]}
    if label_order(labels) != packed["order"]:
        return top
    raw = base64.b64decode(packed["f16"])
    values = struct.unpack(f"<{len(labels)}e", raw)
    return {label: top.get(label, value) for label, value in zip(labels, values, strict=True)}


def compact_output(output: dict[str, Any]) -> dict[str, Any]:
    """A prediction output as stored: scores of more than TOP_K labels packed."""
    scores = output.get("scores")
    if not scores or len(scores) <= TOP_K:
        return output
    rest = {key: value for key, value in output.items() if key != "scores"}
    return {**rest, PACKED: pack_scores(scores)}


def full_output(output: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """A stored prediction output as it was served: packed scores back as a dict."""
    if PACKED not in output:
        return output
    rest = {key: value for key, value in output.items() if key != PACKED}
    return {**rest, "scores": unpack_scores(output[PACKED], labels)}
