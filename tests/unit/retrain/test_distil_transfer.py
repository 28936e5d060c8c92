"""A student's transfer set: the served texts it learns the teacher's soft labels alone on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import torch

import retrain.distil_loss
from core.data import Row
from core.states import RunState, RunTrigger
from core.store.predictions import insert_predictions
from core.store.run_queries import get_run
from core.store.runs import create_run
from retrain.context import Context
from retrain.dataset import Dataset
from retrain.distil import DistilArgs, distil, student_recipe
from retrain.distil_loss import distillation_loss
from retrain.distil_run import transfer_texts
from retrain.service import execute_run
from retrain.train_args import TrainArgs
from retrain.train_data import NO_LABEL
from tests.factories import prediction_row, rows, seed_corrected_feedback
from tests.unit.retrain.factories import SHORT_RUN, STUDENT_AT_RUN_RECIPE, claimed, fast_context

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A store with a tiny champion v1; distillation on with a transfer set of 4 texts."""
    return fast_context(
        tmp_path,
        sqlite_url,
        base_artifact,
        **SHORT_RUN,
        **STUDENT_AT_RUN_RECIPE,
        distil=True,
        distil_throughput_texts=8,
        distil_transfer_texts=4,
    )


def test_a_row_without_a_label_adds_only_its_soft_term() -> None:
    student = torch.tensor([[1.0, 0.0], [0.5, -0.5]], requires_grad=True)
    teacher = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    t, alpha = 2.0, 0.5

    def mixed(labels: list[int]) -> torch.Tensor:
        return distillation_loss(student, teacher, torch.tensor(labels), temperature=t, alpha=alpha)

    def row(i: int, label: int, a: float) -> torch.Tensor:
        one = torch.tensor([label])
        return distillation_loss(
            student[i : i + 1], teacher[i : i + 1], one, temperature=t, alpha=a
        )

    # Row 0 labeled (both terms), row 1 not: its share is the soft term alone (alpha = 0 scaled).
    expected = (row(0, 1, alpha) + row(1, 0, 0.0) * (1 - alpha)) / 2
    loss = mixed([1, NO_LABEL])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # The unlabeled row's gradient is its soft term's only: no label pulls it either way.
    (grad,) = torch.autograd.grad(loss, student)
    (soft,) = torch.autograd.grad(row(1, 0, 0.0) * (1 - alpha) / 2, student)
    assert torch.allclose(grad[1], soft[1]) and not torch.allclose(grad[1], torch.zeros(2))
    assert torch.isfinite(mixed([NO_LABEL, NO_LABEL]))  # a batch of transfer texts alone


def test_the_student_learns_the_transfer_texts_on_soft_labels_alone(
    base_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    real = retrain.distil_loss.distillation_loss

    def spy(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, **kw: Any) -> Any:
        seen.append(labels.clone())
        return real(student, teacher, labels, **kw)

    monkeypatch.setattr(retrain.distil_loss, "distillation_loss", spy)
    labeled = rows(["negative", "positive"], 4)
    transfer = [f"served text number {i}" for i in range(6)]
    dataset = Dataset(labeled, [], ["negative", "positive"], "h")
    args = TrainArgs(method="full", epochs=2, min_steps=0, batch_size=4, max_length=16)
    made = distil(
        base=base_artifact,
        dataset=dataset,
        args=args,
        out=tmp_path / "student",
        options=DistilArgs(throughput_texts=4, device="cpu", min_steps=0),
        transfer=transfer,
    )
    labels = torch.cat(seen)
    # Each epoch trains the 8 labeled rows with their labels and the 6 texts without.
    assert int((labels == NO_LABEL).sum()) == 2 * len(transfer)
    assert int((labels != NO_LABEL).sum()) == 2 * len(labeled)
    assert made.params["distil"]["transfer_texts"] == 6 and made.params["unlabeled_rows"] == 6


def _served(
    ctx: Context, texts: list[str | None], *, version: str = "v1", start: int = 0, at: datetime = T0
) -> None:
    """Predictions of `version`, one a minute from `at` in the order given (the last newest)."""
    records = []
    for i, text in enumerate(texts):
        record = prediction_row(f"{version}-{start + i}", text=text or "", version=version)
        record |= {"created_at": at + timedelta(minutes=start + i), "input_text": text}
        records.append(record)
    insert_predictions(ctx.db, records)


def test_the_transfer_set_is_the_newest_served_texts_none_the_gate_or_training_holds(
    ctx: Context,
) -> None:
    _served(ctx, ["old 1", "old 2", "old 3"])
    _served(ctx, ["golden", "held out", "trained", "new 1", None, "new 1", "new 2"], start=3)
    _served(ctx, ["another version's"], version="v0", start=20)
    dataset = Dataset(
        [Row(text="trained", label="positive")],
        [Row(text="held out", label="negative")],
        ["negative", "positive"],
        "h",
    )
    champion = ctx.registry.get("v1")
    golden = [{"text": "golden", "label": "positive"}]
    texts = transfer_texts(claimed(ctx), champion, dataset, golden=golden)
    # Newest first, each once, capped at the setting's 4; an erased (NULL) text never.
    assert texts == ["new 2", "new 1", "old 3", "old 2"]


def test_a_distilled_run_records_its_transfer_set_and_keeps_it_out_of_the_lineage(
    ctx: Context,
) -> None:
    seed_corrected_feedback(ctx.db, 240)
    unlabeled = [f"good great nice served {i}" for i in range(6)]
    _served(ctx, unlabeled, at=datetime.now(UTC) + timedelta(days=1))  # the newest served
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert execute_run(ctx, run.run_id, owner="w1") in (RunState.PROMOTED, RunState.REJECTED)
    done = get_run(ctx.db, run.run_id)
    assert done.strategy["transfer_texts"] == 4
    version = ctx.registry.get(done.version)
    lines = (Path(version.artifact_path) / "train.jsonl").read_text().splitlines()
    lineage = {json.loads(line)["text"] for line in lines}
    assert lineage and not lineage & set(unlabeled)  # soft labels are no labels to replay


def test_the_student_trains_at_its_own_recipe_where_set() -> None:
    run = TrainArgs(learning_rate=3e-5, min_steps=100)
    own = student_recipe(run, DistilArgs(learning_rate=1e-4, min_steps=300))
    assert (own.learning_rate, own.min_steps, own.epochs) == (1e-4, 300, run.epochs)
    kept = student_recipe(run, DistilArgs(learning_rate=0.0, min_steps=0))
    assert (kept.learning_rate, kept.min_steps) == (3e-5, 100)
