"""Settings of the retraining loop (`TUNELOOP_RETRAIN_*`), and the types and bounds they share."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from core.settings.distil import DistilSettings

# Matrix-product precision in training (see RetrainSettings.precision).
Precision = Literal["auto", "fp32", "bf16", "fp16"]
# Hyper-parameter search samplers (see RetrainSettings.search_sampler).
Sampler = Literal["grid", "random", "tpe"]
# How a gate-passed challenger reaches production (see RetrainSettings.rollout).
RolloutMode = Literal["promote", "canary"]
# Bounds of a search request (api, CLI, settings). Rule: a full fine-tune trial of MiniLM on a
# CPU worker takes minutes, so 100 trials is already days; more is a typo, not a plan. A day of
# seconds bounds a budget the same way.
SEARCH_MAX_TRIALS = 100
SEARCH_MAX_SECONDS = 86_400.0


class RetrainSettings(DistilSettings):
    """The retraining loop: dataset, trainer, gate (workers)."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_RETRAIN_")

    allow_new_labels: bool = Field(
        False,
        description="Accept corrected labels the model lacks; the next retrain grows its head.",
    )
    method: Literal["auto", "full", "lora"] = Field(
        "auto",
        description="Fine-tune `full` or `lora`; `auto`: full up to 150M parameters, else LoRA.",
    )
    learning_rate: float = Field(0.0, ge=0.0, description="0: 3e-5 (full) or 5e-4 (LoRA).")
    epochs: float = Field(
        3.0, gt=0.0, description="Training epochs (early stopping, when on, may end sooner)."
    )
    # Rule: a full fine-tune at 3e-5 needs on the order of 100 optimizer steps to move a model.
    # From the zero-shot default, 300 books labels leave 120 training rows: 3 epochs are 24 steps
    # and gained 1 point (rejected); 10 epochs (~80 steps) gained 10.6 (promoted).
    min_steps: int = Field(
        100, ge=0, description="Fewest optimizer steps: small data sets get more epochs (up to 20)."
    )
    batch_size: int = Field(16, ge=1, description="Training batch size.")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the head.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha.")
    # Rule: a version serves at the highest throughput it can unless asked otherwise; a kept
    # adapter runs eagerly over its shared base at 91-92 % of the merged model frozen into
    # TorchScript on a CPU, a generation adapter at 68-82 % of the merged model's tokens/s
    # (docs/measurements/adapters.md), so merging stays the default; keep adapters where disk,
    # many versions or swap time matter more (docs/decisions/0029, 0031).
    lora_keep_adapter: bool = Field(
        False,
        description="A LoRA run (classification or generation) keeps its adapter unmerged: the "
        "version stores only the adapter (and a classifier's head) over its base version, and "
        "the api swaps adapters on one base in memory.",
    )
    # Rule: a fine-tune of a few epochs keeps its last epoch; an eval split would pick the epoch
    # by the replayed old domain and withhold scarce new labels (docs/decisions/0002).
    early_stopping_patience: int = Field(
        0,
        ge=0,
        description="Epochs without macro-F1 gain on a tenth of the training rows before "
        "stopping; 0: off, every row trains and the last epoch is kept.",
    )
    max_length: int = Field(128, ge=8, description="Token limit of training texts.")
    # Rule: bf16 matrix products where the hardware multiplies bf16 natively, master weights and
    # optimizer state in fp32 (docs/decisions/0013).
    precision: Precision = Field(
        "auto",
        description="Matrix-product precision in training; auto: bf16 where native (CUDA with "
        "bf16, CPUs with AVX512-BF16/AMX), fp16 on older CUDA cards, else fp32.",
    )
    # Rule: enough old rows replayed that the new domain is a quarter of each batch, which bounds
    # the cost as the lineage grows (docs/decisions/0004).
    replay_ratio: float = Field(
        3.0, ge=0.0, description="Champion rows replayed per new training row (0: all of them)."
    )
    # Rule: what users taught weighs as much in the loss as the champion's rows replayed beside
    # it (docs/decisions/0003).
    feedback_repeats: int = Field(
        3,
        ge=1,
        description="Most times a feedback-labeled training row trains an epoch: until feedback "
        "weighs as much as the champion's rows replayed beside it.",
    )
    holdout_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="Most recent labeled feedback held out for the gate."
    )
    # Rule: off, the newest share of all labels (decision 0008): the gate's power grows with its
    # rows, and the shift's own minimum share judged fewer, so side by side the drills promoted
    # less and ended lower with it on (docs/decisions/0021). On, a run a shift started is judged
    # on the shift's labels only, for shifts where the older labels would tilt the gate.
    holdout_from_shift: bool = Field(
        False,
        description="A run that ends a drift streak holds out the newest share of the labels "
        "since the streak began (off: of all labels).",
    )
    golden_size: int = Field(
        200, ge=0, description="Golden set size taken from the first labeled feedback (zero-shot)."
    )
    min_gain: float = Field(0.03, ge=0.0, description="Accuracy gain on the holdout to promote.")
    confidence: float = Field(
        0.90, gt=0.5, lt=1.0, description="Confidence of the paired (McNemar) test."
    )
    max_regression: float = Field(
        0.045, ge=0.0, description="Largest golden-set accuracy drop a promotion tolerates."
    )
    min_holdout: int = Field(50, ge=1, description="Fewer holdout rows reject the run.")
    second_look_confidence: float = Field(
        0.97,
        gt=0.5,
        le=1.0,
        description="A challenger failing only the paired test is kept pending; the next run "
        "tests it at this confidence on every label since it trained. 1.0: no second look.",
    )
    # Generation gate (retrain.gen_gate; `python -m benchmarks.gate_generation` chose them: on
    # 80 holdout rows an equal challenger is rejected in 96 % of seeds, +5 ROUGE-L points
    # promoted in 96 %; on 40 rows, 95 % and 86 %).
    rouge_min_gain: float = Field(
        0.02, ge=0.0, description="Generation: ROUGE-L F gain on the holdout to promote."
    )
    rouge_confidence: float = Field(
        0.95, gt=0.0, lt=1.0, description="Generation: one-sided confidence of the paired test."
    )
    rouge_max_regression: float = Field(
        0.02, ge=0.0, description="Generation: largest golden ROUGE-L drop allowed."
    )
    rouge_min_holdout: int = Field(
        40, ge=1, description="Generation: fewer holdout rows reject the run before it trains."
    )
    # The generation recipe (retrain.sft, retrain.sft_data): its own sizes, since a summary row
    # is ~300 tokens where a classification text is ~30. Rules in retrain.sft's SftArgs.
    sft_batch_size: int = Field(8, ge=1, description="Generation: SFT batch size.")
    sft_weight_decay: float = Field(0.0, ge=0.0, description="Generation: AdamW weight decay.")
    sft_lora_r: int = Field(16, ge=1, description="Generation: LoRA rank.")
    sft_lora_alpha: int = Field(32, ge=1, description="Generation: LoRA alpha.")
    sft_lora_targets: str = Field(
        "all-linear",
        description="Generation: LoRA target modules (PEFT's all-linear, or names separated by "
        "commas).",
    )
    sft_max_length: int = Field(
        1024, ge=16, description="Generation: token limit of a prompt with its completion."
    )
    # Rule in retrain.sft_data: 40 % of scarce preferred outputs give the paired ROUGE-L test
    # its 60-100 rows at 150-250 of them.
    sft_holdout_share: float = Field(
        0.4, gt=0.0, lt=1.0, description="Generation: newest preferred outputs held out."
    )
    # Rule: a CPU LoRA step of SmolLM2 on 8 rows is ~10 s; a budget bounds a run's time where a
    # step count cannot (0: none, the epochs decide).
    generation_max_seconds: float = Field(
        0.0, ge=0.0, description="Generation: training time budget in seconds (0: none)."
    )
    # Rule: SFT until KTO wins on real data (docs/decisions/0023); `method` above stays the
    # orthogonal choice of full or LoRA weights for either.
    generation_method: Literal["sft", "kto"] = Field(
        "sft",
        description="Generation: `sft` trains on preferred and well-rated outputs; `kto` also "
        "learns from outputs rated 2 or less (opt-in, retrain.kto).",
    )
    # Rule: TRL's KTOConfig defaults; the paper recommends weights that put
    # λ_D·n_D / (λ_U·n_U) in [1, 4/3], and a run records the ratio and a note when outside.
    kto_beta: float = Field(0.1, gt=0.0, description="Generation, KTO: beta.")
    kto_desirable_weight: float = Field(
        1.0, gt=0.0, description="Generation, KTO: loss weight of desirable completions."
    )
    kto_undesirable_weight: float = Field(
        1.0, gt=0.0, description="Generation, KTO: loss weight of undesirable completions."
    )
    # Rule: off, so the feedback holdout is never trained on by the run it promotes; on, the model
    # promoted also learns the holdout, for one more training (docs/decisions/0005).
    refit: bool = Field(
        False,
        description="Promote the recipe refitted on every label, the gate's holdout included, "
        "when the refit holds the golden set (else the challenger as tested).",
    )
    # Rule: `promote`, because the gate has already tested the challenger on the newest labels
    # and a canary needs live feedback from its share of clients, which few deployments collect
    # fast (hundreds of items per arm); `canary` where they do and want it confirmed live.
    rollout: RolloutMode = Field(
        "promote",
        description="A run whose gate passes: `promote` flips the champion; `canary` serves the "
        "challenger to TUNELOOP_CANARY_SHARE of the clients and lets the sequential test decide.",
    )
    cross_fit_folds: int = Field(
        0,
        ge=0,
        description="0: the gate tests on the holdout. k >= 2: on every new label, each scored by "
        "a model trained without its fold (k more trainings); the promoted model trains on all.",
    )
    # Hyper-parameter search (retrain.search, docs/decisions/0022).
    # Rule: TPE chooses each trial from the finished ones; grid and random are there to compare.
    search_sampler: Sampler = Field(
        "tpe", description="Search sampler: tpe, random or grid (each seeded by `seed`)."
    )
    # Rule: at 10 trials (the plain recipe is trial 0, TPE models 6 after 3 random starts) the
    # search gained 6.7 points of macro-F1 on CLINC150 (docs/measurements/search.md).
    search_trials: int = Field(
        10, ge=1, le=SEARCH_MAX_TRIALS, description="Trials of `retrain --search` without N."
    )
    # Rule: an hour holds 10 trials of the default MiniLM on 450 short rows (19 minutes on one
    # busy core) or ~8 on 400 reviews at 64 tokens (docs/measurements/search.md); the run's
    # final training comes on top.
    search_budget_seconds: float = Field(
        3600.0,
        gt=0.0,
        le=SEARCH_MAX_SECONDS,
        description="Seconds a search may take when its request names none (trials stop there).",
    )
    # Rule: off, since a search costs about N plain runs of worker time; an operator opts in.
    search_after_reject: int = Field(
        0,
        ge=0,
        le=SEARCH_MAX_TRIALS,
        description="Trials the next run searches after a run whose plain recipe the gate "
        "rejected; 0: off.",
    )
    lease_seconds: int = Field(
        120, ge=10, description="A run whose heartbeat is older than this is taken up again."
    )
    reap_interval: int = Field(30, ge=5, description="Seconds between lease checks by beat.")
    # Rule: a worker dies under a run for a passing reason (a deploy, a lost host) seldom twice
    # in a row; a run that killed it three times (out of memory, a native crash) will again, so
    # the reaper fails it instead of sending it forever.
    max_attempts: int = Field(
        3, ge=1, description="Attempts of a run whose worker died before the run is failed."
    )
    torch_threads: int = Field(0, ge=0, description="Torch threads for training (0: all cores).")
    # Rule: one training process per GPU the worker sees, as a `torchrun` job (DDP), since a
    # prefork worker cannot re-initialise CUDA for several devices; on a CPU one process trains
    # in the worker, as two processes on the same cores only split them (docs/decisions/0028).
    processes: int | Literal["auto"] = Field(
        "auto",
        description="Training processes: above 1, the classifier trains as a torchrun job of "
        "that many (DDP; gloo on a CPU); auto: the CUDA devices of `device: auto`, else 1.",
    )
    seed: int = Field(42, description="Training seed.")

    @field_validator("processes")
    @classmethod
    def _processes(cls, value: int | str) -> int | str:
        if value != "auto" and int(value) < 1:
            raise ValueError("processes is auto or at least 1")
        return value

    @model_validator(mode="after")
    def _distil_on_the_holdout(self) -> RetrainSettings:
        if self.distil and (self.cross_fit_folds or self.refit):
            raise ValueError("distil gates on the holdout: no cross_fit_folds, no refit")
        return self

    @field_validator("cross_fit_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("cross_fit_folds is 0 (holdout) or at least 2")
        return value
