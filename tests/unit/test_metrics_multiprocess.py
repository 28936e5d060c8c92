"""Prometheus multiprocess mode (`tuneloop serve --workers N`), in a child process of its own:
the mode is chosen when prometheus_client is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
from api import metrics
metrics.set_model("v1", "classification")
metrics.set_model("v2", "classification")
before = metrics.render()[0].decode()
metrics.forget_this_process()
print(before, "---", metrics.render()[0].decode())
"""


def test_a_swap_marks_the_old_version_0_and_an_exiting_process_leaves_no_live_gauge(
    tmp_path: Path,
) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.split("---")
    assert 'tuneloop_api_model_info{task="classification",version="v1"} 0.0' in before
    assert 'tuneloop_api_model_info{task="classification",version="v2"} 1.0' in before
    assert "tuneloop_api_model_info{" not in after and "tuneloop_api_model_ready " not in after
    assert "UserWarning" not in done.stderr  # clear() is not called where it does nothing
