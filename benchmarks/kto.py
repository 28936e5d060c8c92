"""`python -m benchmarks.kto`: KTO against SFT from the same simulated feedback, held-out ROUGE-L.

    python -m benchmarks.kto [--json F]                                  # the tiny Llama
    python -m benchmarks.kto --base ARTIFACT --data ROWS.jsonl [--rows 48] [--held 24] \
        [--max-seconds 240] [--json F]                                   # a real generator

Users rate every served output by ROUGE-L against the reference (the drill's `rating_of`) and
give the reference as a preferred output on a share of them (the drill's PREFERRED_RATE). SFT
trains on what it can use (preferred and well-rated outputs); KTO on the same rows plus the
outputs rated 2 or less. Both start from the same base with the same LoRA recipe, seed and
budget, and answer the same held-out prompts greedily.

The tiny Llama (tests/generators.py, written to a temporary folder) learns a mapping in which a
prompt's last word decides the answer; its served outputs are answers drawn at random, so about
a quarter are right (rated 5) and the rest wrong (rated 1): the thumbs down carry information.
A real generator (`--base`, e.g. the converted default) serves its own greedy outputs to `--data`
rows `{"prompt", "reference"}`.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from core.data import read_pairs
from core.runtime.textgen import load_generation
from core.textmetrics import rouge_l
from retrain.kto import KtoArgs, kto
from retrain.sft import SftArgs, sft
from retrain.sft_data import SftOptions, build_sft_dataset, rejected_pairs
from tuneloop.drill.textgen import PREFERRED_RATE, rating_of

ANSWERS = {"one": "red green blue", "two": "the quick brown fox", "three": "the lazy dog"}
ANSWERS |= {"four": "paris is the capital"}
WORDS = ["fox", "dog", "paper", "red", "blue", "green", "capital", "france", "lazy", "quick"]
WORDS += ["brown", "jumps", "over", "what", "is", "the", "summaries", "method", "works", "well"]
# The tiny model's recipe (tests/unit/retrain/test_sft.py: its 0.02-std head must train too).
TINY = {
    "learning_rate": 1e-2,
    "max_steps": 40,
    "lora_targets": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head",
}
NEW_TOKENS = 48


def tiny_rows(seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """Feedback rows, held-out rows (words never rated) and the served outputs (random answers)."""
    rows = [{"prompt": f"{w} {n}", "reference": a} for w in WORDS for n, a in ANSWERS.items()]
    held = [r for r in rows if r["prompt"].split()[0] in WORDS[-4:]]
    rated = [r for r in rows if r not in held]
    rng = random.Random(seed)
    return rated, held, [rng.choice(list(ANSWERS.values())) for _ in rated]


def feedback_of(rows: list[dict[str, str]], served: list[str], seed: int) -> list[dict[str, Any]]:
    """Every served output rated by ROUGE-L; a preferred output on PREFERRED_RATE of them."""
    rng = random.Random(seed)
    return [
        {
            "prompt": row["prompt"],
            "output": out,
            "rating": rating_of(rouge_l(out, row["reference"])),
            "preferred_output": row["reference"] if rng.random() < PREFERRED_RATE else None,
            "created_at": None,
        }
        for row, out in zip(rows, served, strict=True)
    ]


def answers(path: Path, rows: list[dict[str, str]]) -> list[str]:
    """Greedy answers of the artifact at `path` to the rows' prompts."""
    generator = load_generation(path, version="bench", device="cpu")
    return [a.text for a in generator.generate_texts(rows, max_new_tokens=NEW_TOKENS)]


def mean_rouge(path: Path, held: list[dict[str, str]]) -> float:
    """Mean ROUGE-L F of the artifact's greedy answers to the held-out rows."""
    texts = answers(path, held)
    return sum(rouge_l(t, r["reference"]) for t, r in zip(texts, held, strict=True)) / len(held)


def compare(
    base: Path,
    rated: list[dict[str, str]],
    held: list[dict[str, str]],
    served: list[str],
    **kw: Any,
) -> dict[str, Any]:
    """Train SFT and KTO from the same feedback on `rated`; ROUGE-L on `held` and seconds."""
    feedback = feedback_of(rated, served, seed=kw.get("seed", 0))
    options = SftOptions(holdout_share=0.0, replay_ratio=0.0)  # the benchmark holds out `held`
    train = build_sft_dataset(champion_pairs=[], feedback=feedback, options=options).train
    rejected = rejected_pairs(feedback)
    out: dict[str, Any] = {"base": mean_rouge(base, held), "held": len(held)}
    out |= {"desirable": len(train), "undesirable": len(rejected)}
    with tempfile.TemporaryDirectory(prefix="tuneloop-bench-kto-") as scratch:
        # Untimed: the first training in a process pays for lazy imports and allocator warm-up.
        warm = {**kw, "max_steps": 1, "max_seconds": 0.0}
        sft(base=base, pairs=train[:2], args=SftArgs(**warm), out=Path(scratch) / "warm")
        for name in ("sft", "kto"):
            started = time.perf_counter()
            if name == "sft":
                result = sft(base=base, pairs=train, args=SftArgs(**kw), out=Path(scratch) / name)
            else:
                args = KtoArgs(**kw)
                result = kto(
                    base=base,
                    desirable=train,
                    undesirable=rejected,
                    args=args,
                    out=Path(scratch) / name,
                )
            seconds = time.perf_counter() - started
            out[name] = {
                "rougeL": mean_rouge(result.path, held),
                "train_seconds": round(seconds, 1),
                "steps": result.steps,
                **{k: v for k, v in result.params.items() if k.startswith("kto_")},
            }
    return out


@click.command()
@click.option("--base", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--rows", default=48, show_default=True, help="Rated rows (with --data).")
@click.option("--held", default=24, show_default=True, help="Held-out rows (with --data).")
@click.option("--max-seconds", default=240.0, show_default=True, help="Training budget each.")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def main(
    base: Path | None,
    data: Path | None,
    rows: int,
    held: int,
    max_seconds: float,
    seed: int,
    json_path: Path | None,
) -> None:
    """Run the comparison and print (and optionally write) its figures."""
    started = time.perf_counter()
    if base is None:
        from tests.generators import tiny_llama

        folder = Path(tempfile.mkdtemp(prefix="tuneloop-bench-kto-base-"))
        base = tiny_llama(folder / "llama", seed=seed)
        rated, kept, served = tiny_rows(seed)
        figures = compare(base, rated, kept, served, seed=seed, precision="fp32", **TINY)
    else:
        if data is None:
            raise click.UsageError("--base needs --data ROWS.jsonl of {prompt, reference}")
        pairs = read_pairs(data, max_chars=2000)
        random.Random(seed).shuffle(pairs)
        rated, kept = pairs[:rows], pairs[rows : rows + held]
        served = answers(base, rated)
        figures = compare(base, rated, kept, served, seed=seed, max_seconds=max_seconds)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(figures, indent=2, ensure_ascii=False)
    print(text)
    if json_path:
        json_path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
