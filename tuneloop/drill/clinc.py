"""CLINC150 as two drills: a change of which domains users ask about, and domains never seen.

Usage: `tuneloop drill data --clinc150 SRC OUT [--per-intent N] [--seed S]`, SRC holding
`data_full.json` and `domains.json` (clinc/oos-eval: 150 intents in 10 domains of 15, Larson et
al., EMNLP 2019). Writes `OUT/<scenario>/reference.jsonl` and `shifted.jsonl` for each scenario,
to run as `tuneloop drill --reference ... --shifted ...`. In-scope rows only (train, val and
test pooled: the drill makes its own splits); out-of-scope queries have no intent to learn.

The split of the domains (stated, not searched): the shift is toward travel, utility and work,
the three everyday-task domains; the other seven (banking, credit cards, kitchen and dining,
home, auto and commute, small talk, meta) are the champion's.

- clinc-domains (many classes): REF holds every intent, the three shift domains at a tenth of
  their rows (the domains the champion saw least); SHIFT is 80 % the shift domains, 20 % the
  others. Every row is in one file only.
- clinc-new-classes: REF holds the seven domains only; SHIFT the other three, whose 45 intents
  the champion does not know (the drill then sets TUNELOOP_RETRAIN_ALLOW_NEW_LABELS=true).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

from core.data import Row, write_jsonl

SHIFT_DOMAINS = ("travel", "utility", "work")
# A tenth of a shift domain's rows in REF: ~10 training rows per intent at the full size, seen
# but the least of all, as with a product whose users rarely asked about those things yet.
SEEN_SHARE = 0.10
# The shifted stream: four in five queries from the shift domains.
SHIFT_WEIGHT = 0.80
SCENARIOS = ("clinc-domains", "clinc-new-classes")
IN_SCOPE_SPLITS = ("train", "val", "test")


def read_clinc(src: Path) -> tuple[list[Row], dict[str, str]]:
    """In-scope rows (each distinct text once; texts with two intents dropped) and the
    intent -> domain map from `domains.json`."""
    data = json.loads((src / "data_full.json").read_text(encoding="utf-8"))
    domains = json.loads((src / "domains.json").read_text(encoding="utf-8"))
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    pairs = [(" ".join(t.split()), label) for s in IN_SCOPE_SPLITS for t, label in data[s]]
    intents_of: dict[str, set[str]] = defaultdict(set)
    for text, label in pairs:
        intents_of[text].add(label)
    seen: set[str] = set()
    rows: list[Row] = []
    for text, label in pairs:
        if text and len(intents_of[text]) == 1 and text not in seen:
            if label not in domain_of:
                raise ValueError(f"intent {label!r} is in no domain of domains.json")
            seen.add(text)
            rows.append({"text": text, "label": label})
    return rows, domain_of


def by_intent(rows: list[Row], *, per_intent: int | None, seed: int) -> dict[str, list[Row]]:
    """Rows grouped by intent, shuffled (seeded), at most `per_intent` of each."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row["label"]].append(row)
    rng = random.Random(f"clinc-{seed}")
    for intent in sorted(groups):
        rng.shuffle(groups[intent])
        groups[intent] = groups[intent][:per_intent]
    return dict(groups)


def new_classes(
    groups: dict[str, list[Row]], domain_of: dict[str, str]
) -> tuple[list[Row], list[Row]]:
    """REF: the seven champion domains' rows; SHIFT: the three shift domains' rows."""
    ref = [r for i, rows in groups.items() if domain_of[i] not in SHIFT_DOMAINS for r in rows]
    shift = [r for i, rows in groups.items() if domain_of[i] in SHIFT_DOMAINS for r in rows]
    return ref, shift


def domain_mix(
    groups: dict[str, list[Row]], domain_of: dict[str, str], *, seed: int
) -> tuple[list[Row], list[Row]]:
    """REF: every intent, shift domains at SEEN_SHARE; SHIFT: SHIFT_WEIGHT from shift domains."""
    ref: list[Row] = []
    shift_rows: list[Row] = []
    for intent, rows in groups.items():
        if domain_of[intent] in SHIFT_DOMAINS:
            cut = max(1, round(SEEN_SHARE * len(rows)))
            ref += rows[:cut]
            shift_rows += rows[cut:]
    others = [r for i, rows in groups.items() if domain_of[i] not in SHIFT_DOMAINS for r in rows]
    random.Random(f"clinc-mix-{seed}").shuffle(others)
    n_others = round(len(shift_rows) * (1 - SHIFT_WEIGHT) / SHIFT_WEIGHT)
    shift = shift_rows + others[:n_others]
    random.Random(f"clinc-shift-{seed}").shuffle(shift)
    return ref + others[n_others:], shift


def scenarios(src: Path, *, per_intent: int | None, seed: int) -> dict[str, tuple[list[Row], ...]]:
    """(REF, SHIFT) rows of each scenario."""
    rows, domain_of = read_clinc(src)
    missing = set(SHIFT_DOMAINS) - set(domain_of.values())
    if missing:
        raise ValueError(f"domains.json lacks the shift domains {sorted(missing)}")
    groups = by_intent(rows, per_intent=per_intent, seed=seed)
    return {
        "clinc-domains": domain_mix(groups, domain_of, seed=seed),
        "clinc-new-classes": new_classes(groups, domain_of),
    }


def main(argv: list[str]) -> int:
    """Command-line entry: SRC OUT [--per-intent N] [--seed S]."""
    parser = argparse.ArgumentParser(prog="tuneloop drill data --clinc150", description=__doc__)
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-intent", type=int, default=None, help="rows kept per intent")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_intent is not None and args.per_intent < 10:
        parser.error("--per-intent must be at least 10 (a tenth of it goes to REF)")
    for name, (ref, shift) in scenarios(
        args.src, per_intent=args.per_intent, seed=args.seed
    ).items():
        for part, rows in (("reference", ref), ("shifted", shift)):
            path = args.out / name / f"{part}.jsonl"
            write_jsonl(path, rows)
            intents = Counter(r["label"] for r in rows)
            print(f"{name} {part}: {len(rows)} rows, {len(intents)} intents -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
