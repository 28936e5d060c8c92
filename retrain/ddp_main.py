"""The training job of a run of several processes (`retrain.ddp` writes its folder, launches it):

    python -m torch.distributed.run --standalone --nproc-per-node N -m retrain.ddp_main FOLDER

Every process runs `retrain.train.train` on the same inputs; the Hugging Face Trainer reads
torchrun's LOCAL_RANK and WORLD_SIZE and trains the model under DDP (NCCL on CUDA, gloo on a
CPU), each process on its share of every batch. The first process writes the artifact, the
progress lines the worker relays, and the result.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from retrain.ddp import PROGRESS_FILE, RESULT_FILE, read_job
from retrain.progress import Progress
from retrain.train import train
from retrain.trainer import is_main_process


@record  # a failure's traceback reaches torchrun's summary, so the worker's error shows it
def main(argv: list[str] | None = None) -> int:
    """Train from the job folder named by the one argument."""
    job = Path((argv or sys.argv[1:])[0])
    spec = read_job(job)
    first = is_main_process()
    result = train(
        base=spec["base"],
        dataset=spec["dataset"],
        args=spec["args"],
        out=spec["out"],
        progress=_reporter(job / PROGRESS_FILE) if first else None,
    )
    if first:
        figures = {k: v for k, v in asdict(result).items() if k != "path"}  # out is the worker's
        tmp = job / f"{RESULT_FILE}.tmp"
        tmp.write_text(json.dumps(figures))
        tmp.replace(job / RESULT_FILE)
    return 0


def _reporter(path: Path) -> Progress:
    """Append each report as a line, flushed at once (the worker polls the file)."""

    def report(fraction: float, loss: float | None) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"fraction": fraction, "loss": loss}) + "\n")

    return report


if __name__ == "__main__":
    sys.exit(main())
