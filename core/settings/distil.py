"""The distillation fields of the retraining loop's settings (`TUNELOOP_RETRAIN_DISTIL_*`):
retrain.distil, docs/decisions/0027. `RetrainSettings` extends this class."""

from __future__ import annotations

from pydantic import Field

from core.settings.base import ComponentSettings


class DistilSettings(ComponentSettings):
    """Distillation into a faster student (read as `settings.retrain.distil_*`)."""

    # Rule: off, since the student is a smaller model than the champion and may be promoted for
    # speed at a small loss of accuracy (the tolerance below): that trade is the operator's.
    distil: bool = Field(
        False,
        description="Train a student distilled from the champion as the run's challenger; the gate "
        "may prefer it for its throughput within the tolerance below.",
    )
    # Rule: half the layers, as DistilBERT (6 of BERT-base's 12) and MiniLM's 3-of-6 students.
    distil_layers: int = Field(
        0,
        ge=0,
        description="Layers of the student cut from the champion's first ones; 0: half the "
        "champion's, rounded up.",
    )
    distil_student: str = Field(
        "",
        description="A local encoder folder (or model id) to distil into instead of the "
        "champion's first layers; its head starts from the label names' embeddings.",
    )
    # Rule: DistilBERT's temperature; softer targets than T=1 carry the teacher's ranking of the
    # wrong labels, and much higher ones flatten a two-label teacher to a coin.
    distil_temperature: float = Field(
        2.0, gt=0.0, description="Temperature T of the soft labels (the KL term is scaled T^2)."
    )
    # Rule: an even mix; the hard labels correct the teacher where feedback says it is wrong.
    distil_alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the hard labels' cross-entropy; 1 - alpha weighs the soft labels.",
    )
    # Rule: DistilBERT keeps 97 % of its teacher's GLUE score at 60 % more speed (issue figures).
    distil_min_accuracy_ratio: float = Field(
        0.97,
        gt=0.0,
        le=1.0,
        description="A student keeping this share of the champion's accuracy on the golden set and "
        "the feedback holdout may be promoted for its throughput.",
    )
    distil_min_speedup: float = Field(
        1.6,
        ge=1.0,
        description="Served throughput, student over champion, that a student promoted within the "
        "accuracy tolerance must reach.",
    )
    # Rule: one padded batch or two of the run's texts: a few seconds of CPU for both models.
    distil_throughput_texts: int = Field(
        64, ge=1, description="Training texts the throughput of student and champion is timed on."
    )
    # Rule: a student cut from the champion's first layers lost the layers its head read, so its
    # kept weights must move further than a fine-tune of the whole model does: about three times
    # the full fine-tune's rate (3e-5 -> 1e-4) for three times its fewest steps (100 -> 300).
    # One recipe chosen by that rule, not fitted on held-out rows; with the transfer set it kept
    # 0.97-1.03 of the teacher's accuracy where the run's recipe kept 0.90-0.98 (Blitzer, two
    # seeds: docs/measurements/retrain.md).
    distil_learning_rate: float = Field(
        1e-4, ge=0.0, description="The student's learning rate; 0: the run's recipe's."
    )
    # Rule: three times the run's `min_steps` (see the learning rate above).
    distil_min_steps: int = Field(
        300, ge=0, description="The student's fewest optimizer steps; 0: the run's recipe's."
    )
    # Rule: the soft labels need no labels (Hinton et al. 2015; DistilBERT and TinyBERT distil on
    # large unlabeled corpora), and the texts the champion served are the inputs the student will
    # serve. 665 of them beside 400 labels lifted the student's test accuracy by 3-4.5 points at
    # the run's recipe and 1-1.5 at its own (docs/measurements/retrain.md). The cap bounds what
    # they add to a run: the teacher's forward over them and three epochs of the student (2,000
    # texts beside 400 rows are 450 steps of 16, minutes on one CPU thread).
    distil_transfer_texts: int = Field(
        2000,
        ge=0,
        description="Served texts (the champion's newest, none of the golden set, the holdout or "
        "the training rows) the student also learns the champion's soft labels on; 0: none.",
    )
