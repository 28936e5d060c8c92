"""Convert the Blitzer multi-domain sentiment reviews (pseudo-XML) to JSONL for the drill.

Usage: `tuneloop drill data SRC OUT [DOMAIN ...]`, SRC holding `<domain>/positive.review`
and `<domain>/negative.review`. The files are not XML (bare `&`), so `<review_text>` is taken with
a regular expression; the label comes from the file name. Entities are unescaped, whitespace is
collapsed, and a text that occurs more than once in a domain is kept once (with both labels: not
at all), so that no held-out row has a twin in the streamed part.
"""

from __future__ import annotations

import html
import re
import sys
from collections import Counter
from pathlib import Path

from core.data import Row, read_labeled, write_jsonl

REVIEW_TEXT = re.compile(r"<review_text>\s*\n(.*?)\n\s*</review_text>", re.S)
LABELS = ("negative", "positive")
DEFAULT_DOMAINS = ("books", "electronics", "kitchen")


def read_reviews(path: Path) -> list[str]:
    """The review texts of one `.review` file, unescaped, whitespace collapsed."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    texts = (" ".join(html.unescape(t).split()) for t in REVIEW_TEXT.findall(raw))
    return [t for t in texts if t]


def blitzer_rows(domain_dir: Path) -> list[Row]:
    """Labeled rows of one domain, each distinct text once; texts with both labels are dropped."""
    pairs = [(t, label) for label in LABELS for t in read_reviews(domain_dir / f"{label}.review")]
    labels_of: dict[str, set[str]] = {}
    for text, label in pairs:
        labels_of.setdefault(text, set()).add(label)
    seen: set[str] = set()
    rows: list[Row] = []
    for text, label in pairs:
        if len(labels_of[text]) == 1 and text not in seen:
            seen.add(text)
            rows.append({"text": text, "label": label})
    return rows


def convert(src: Path, out: Path, domains: tuple[str, ...] = DEFAULT_DOMAINS) -> dict[str, Path]:
    """Write `<out>/<domain>.jsonl` for each domain; returns the paths."""
    written: dict[str, Path] = {}
    for domain in domains:
        rows = blitzer_rows(src / domain)
        if not rows:
            raise ValueError(f"no reviews found under {src / domain}")
        written[domain] = out / f"{domain}.jsonl"
        write_jsonl(written[domain], rows)
    return written


def main(argv: list[str]) -> int:
    """Command-line entry: SRC OUT [DOMAIN ...]."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = Path(argv[0]), Path(argv[1])
    for domain, path in convert(src, out, tuple(argv[2:]) or DEFAULT_DOMAINS).items():
        counts = Counter(r["label"] for r in read_labeled(path))
        print(f"{domain}: {sum(counts.values())} rows {dict(sorted(counts.items()))} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
