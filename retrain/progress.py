"""Report training progress (share of steps done, latest loss) to whoever runs the training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

# The one training-progress type: `report(fraction, loss)`, the share of steps done (rising to
# 1.0) and the latest training loss. The run's reporter renews its lease with it (retrain.run).
Progress = Callable[[float, float | None], None]


class ProgressCallback(TrainerCallback):
    """Call `report(fraction, loss)` at each logged loss, with fractions rising to 1.0 at the end.

    It reports when the Trainer logs (a share of the steps), not at every step: the run's
    reporter may write to the store, which should not happen hundreds of times a minute.
    """

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.loss: float | None = None
        self.last = 0.0

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the latest training loss and report the share of steps done."""
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            self._emit(state.global_step / max(state.max_steps, 1))

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Report completion (early stopping ends before the last planned step)."""
        self._emit(1.0)

    def _emit(self, fraction: float) -> None:
        fraction = min(fraction, 1.0)
        if fraction > self.last:
            self.last = fraction
            self.report(fraction, self.loss)
