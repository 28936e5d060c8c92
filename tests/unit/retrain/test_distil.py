"""Distillation: the student cut from the champion, the loss, a distilled run, and the gate's
tolerance for a faster student (retrain.distil, retrain.distil_loss, retrain.distil_gate)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

import retrain.distil_loss
from core.runtime.model import load_classifier
from core.settings import RetrainSettings
from core.states import RunState, RunTrigger
from core.store.run_queries import get_run
from core.store.runs import claim, create_run
from retrain.context import Context
from retrain.dataset import Dataset
from retrain.distil import DistilArgs, first_layers, student_layers, write_student
from retrain.distil_gate import tolerate
from retrain.distil_loss import distillation_loss
from retrain.distil_run import challenger
from retrain.gate import Verdict, decide
from retrain.run import Run
from retrain.service import execute_run
from tests.factories import seed_corrected_feedback
from tests.unit.retrain.factories import SHORT_RUN, STUDENT_AT_RUN_RECIPE, fast_context


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str, base_artifact: Path) -> Context:
    """A store with a random tiny champion (v1, two layers); distillation on, the student at the
    run's fast recipe."""
    return fast_context(
        tmp_path,
        sqlite_url,
        base_artifact,
        **SHORT_RUN,
        **STUDENT_AT_RUN_RECIPE,
        distil=True,
        distil_throughput_texts=32,
    )


def test_the_default_depth_is_half_the_teachers_rounded_up() -> None:
    assert [student_layers(n, 0) for n in (1, 2, 5, 6, 12)] == [1, 1, 3, 3, 6]
    assert student_layers(6, 2) == 2


def test_the_student_copies_the_teachers_embeddings_first_layers_and_head(
    base_artifact: Path, tmp_path: Path
) -> None:
    teacher, _, _ = load_classifier(base_artifact)
    assert teacher.encoder.config.num_hidden_layers == 2
    write_student(base_artifact, tmp_path / "student", DistilArgs())
    student, tokenizer, _ = load_classifier(tmp_path / "student")
    assert student.encoder.config.num_hidden_layers == 1
    assert len(student.encoder.encoder.layer) == 1
    ours, theirs = teacher.state_dict(), student.state_dict()
    assert set(theirs) == {k for k in ours if ".layer.1." not in k}
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    # Its last hidden state is the teacher's after its first layer, token for token.
    batch = tokenizer(["good great product", "bad"], padding=True, return_tensors="pt")
    teacher.eval(), student.eval()
    with torch.no_grad():
        after_one = teacher.encoder(**batch, output_hidden_states=True).hidden_states[1]
        assert torch.allclose(student.encoder(**batch)[0], after_one, atol=1e-6)
    with pytest.raises(ValueError, match="3 layers"):
        first_layers(teacher, 3)


def test_the_distillation_loss_is_the_hand_computed_mix() -> None:
    student = [[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]
    teacher = [[0.0, 2.0, 0.0], [1.0, -1.0, 3.0]]
    labels = [0, 2]
    t, alpha = 2.0, 0.25

    def softmax(xs: list[float]) -> list[float]:
        e = [math.exp(x) for x in xs]
        return [v / sum(e) for v in e]

    kl = ce = 0.0
    for s, q, y in zip(student, teacher, labels, strict=True):
        p_s, p_t = softmax([x / t for x in s]), softmax([x / t for x in q])
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s, strict=True))
        ce -= math.log(softmax(s)[y])
    expected = alpha * ce / 2 + (1 - alpha) * t * t * kl / 2
    loss = distillation_loss(
        torch.tensor(student),
        torch.tensor(teacher),
        torch.tensor(labels),
        temperature=t,
        alpha=alpha,
    )
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    same = distillation_loss(
        torch.tensor(teacher), torch.tensor(teacher), torch.tensor(labels), temperature=t, alpha=0.0
    )
    assert float(same) == pytest.approx(0.0, abs=1e-7)  # no KL between equal distributions


def test_a_distilled_run_registers_a_student_with_its_throughput(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_corrected_feedback(ctx.db, 240)
    calls: list[float] = []
    real = retrain.distil_loss.distillation_loss

    def spy(*a: Any, **kw: Any) -> torch.Tensor:
        calls.append(kw["temperature"])
        return real(*a, **kw)

    monkeypatch.setattr(retrain.distil_loss, "distillation_loss", spy)
    run, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    state = execute_run(ctx, run.run_id, owner="w1")
    done = get_run(ctx.db, run.run_id)
    assert state in (RunState.PROMOTED, RunState.REJECTED)
    assert calls and set(calls) == {2.0}  # the student trained on the soft labels at T
    version = ctx.registry.get(done.version)
    student, _, _ = load_classifier(Path(version.artifact_path))
    assert student.encoder.config.num_hidden_layers == 1  # the champion has 2
    throughput = version.metrics["throughput"]
    assert throughput["texts"] == 32 and throughput["champion_texts_per_s"] > 0
    assert throughput["ratio"] == pytest.approx(
        throughput["student_texts_per_s"] / throughput["champion_texts_per_s"], rel=0.01
    )
    strategy = done.strategy
    assert strategy["name"] == "distil" and strategy["version"] == version.version
    assert (strategy["layers"], strategy["temperature"], strategy["alpha"]) == (1, 2.0, 0.5)
    line = next(r for r in done.verdict["reasons"] if "distillation tolerance" in r)
    assert "accuracy ratio golden" in line and "feedback" in line
    assert f"throughput ratio {throughput['ratio']:.2f}x" in line


def test_a_champion_descending_from_a_student_is_fine_tuned_not_halved_again(
    ctx: Context, base_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def register(parent: str, params: dict[str, Any]) -> str:
        staged = ctx.registry.staging_dir()
        shutil.copytree(base_artifact, staged, dirs_exist_ok=True)
        labels = ["negative", "positive"]
        version = ctx.registry.register(
            staged,
            task="classification",
            labels=labels,
            base_model="tiny-bert",
            parent=parent,
            params=params,
        )
        ctx.registry.promote(version.version)
        return version.version

    student = register("v1", {"distil": {"layers": 1}})
    champion = ctx.registry.get(register(student, {}))  # the student, fine-tuned once since
    fits: list[Any] = []
    monkeypatch.setattr(
        "retrain.distil_run.train_candidate", lambda *a, **kw: fits.append(kw.get("trainer"))
    )
    created, _ = create_run(ctx.db, trigger=RunTrigger.MANUAL)
    assert claim(ctx.db, created.run_id, owner="w1", lease_seconds=60)
    run = Run(ctx, created.run_id, "w1")
    dataset = Dataset([], [], list(champion.labels), "h")
    challenger(run, champion, dataset, golden=[], part=(0, 1))
    assert fits == [None]  # the plain recipe's train(), no student
    strategy = get_run(ctx.db, run.id).strategy
    assert strategy["name"] == "distil" and student in strategy["skipped"]


def _metrics(student_right: int, *, golden: float = 0.873) -> dict[str, Any]:
    """100 holdout rows the champion gets all right, the student `student_right` of them;
    golden accuracy 0.9 for the champion, `golden` for the student."""

    def scored(right: int, accuracy: float) -> dict[str, Any]:
        correct = [1] * right + [0] * (100 - right)
        return {
            "golden": {"n": 50, "accuracy": accuracy},
            "feedback": {"n": 100, "accuracy": right / 100, "correct": correct},
        }

    return {"champion": scored(100, 0.9), "challenger": scored(student_right, golden)}


@pytest.mark.parametrize(
    ("right", "golden", "speedup", "promote"),
    [
        (97, 0.873, 1.6, True),  # both ratios exactly at their bounds
        (96, 0.873, 1.6, False),  # feedback keeps 0.96
        (97, 0.872, 1.6, False),  # golden keeps 0.969
        (97, 0.873, 1.59, False),  # not fast enough
    ],
)
def test_the_tolerance_accepts_at_its_bounds_and_rejects_below(
    right: int, golden: float, speedup: float, promote: bool
) -> None:
    metrics = _metrics(right, golden=golden)
    gated = decide(champion=metrics["champion"], challenger=metrics["challenger"])
    assert not gated.promote  # the paired test never promotes a student that lost rows
    verdict = tolerate(
        gated,
        metrics,
        {"ratio": speedup},
        min_accuracy_ratio=0.97,
        min_speedup=1.6,
        min_holdout=50,
    )
    assert verdict.promote is promote and not verdict.pending
    line = verdict.reasons[len(gated.reasons)]
    assert f"feedback {right / 100:.3f}" in line and f"throughput ratio {speedup:.2f}x" in line
    assert line.startswith("pass" if promote else "fail")


def test_the_tolerance_needs_the_holdout_and_keeps_a_promotion() -> None:
    metrics = _metrics(97)
    gated = decide(champion=metrics["champion"], challenger=metrics["challenger"])
    limits = {"min_accuracy_ratio": 0.97, "min_speedup": 1.6}
    few = tolerate(gated, metrics, {"ratio": 2.0}, min_holdout=200, **limits)
    assert not few.promote
    passed = Verdict(promote=True, test="mcnemar_midp", p_value=0.01, gain=0.05)
    promoted = tolerate(passed, metrics, {"ratio": 1.0}, min_holdout=50, **limits)
    assert promoted.promote and promoted.reasons[0].startswith("fail")


def test_distillation_refuses_the_refit_and_cross_fitting() -> None:
    with pytest.raises(ValidationError, match="distil"):
        RetrainSettings(distil=True, refit=True)
    with pytest.raises(ValidationError, match="distil"):
        RetrainSettings(distil=True, cross_fit_folds=3)
