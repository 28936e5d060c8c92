"""The Retraining dashboard: runs, durations, verdicts, the champion over time."""

from __future__ import annotations

from grafana.board import annotation, dashboard
from grafana.build import JSON, alert_list, stat, target, timeseries


def retraining() -> JSON:
    """Runs by state and trigger, durations, gate verdicts, the champion over time."""
    runs = "trigger_state:tuneloop_retrain_runs:max"
    panels = [
        stat(
            "Champion version",
            [target("max(tuneloop_retrain_champion_version)", "champion")],
            description="The version every replica serves after its next poll.",
            unit="prefix:v",
            decimals=0,
        ),
        stat(
            "Challenger pending a second look",
            [target("max(tuneloop_retrain_pending_challenger)", "pending")],
            description="A challenger that gained, but not yet significantly: the next run "
            "tests it again on every label since it trained. 0 when none.",
            unit="prefix:v",
            decimals=0,
        ),
        stat(
            "Progress of the run in flight",
            [target("max(tuneloop_retrain_run_progress)", "progress")],
            description="0 when no run is in flight.",
            unit="percentunit",
        ),
        stat(
            "Promoted runs",
            [target(f'sum({runs}{{state="promoted"}})', "promoted")],
            description="Runs whose challenger passed the gate, all triggers.",
        ),
        stat(
            "Failed runs",
            [target(f'sum({runs}{{state="failed"}})', "failed")],
            description="Runs that ended with an error (see GET /v1/retrain/{run_id}).",
            steps=[(None, "green"), (1, "red")],
        ),
        timeseries(
            "Runs by state",
            [target(f"sum by (state) ({runs})", "{{state}}")],
            description="Retrain runs in the store per state.",
            stepped=True,
        ),
        timeseries(
            "Runs by trigger",
            [target(f"sum by (trigger) ({runs})", "{{trigger}}")],
            description="manual (api or CLI), drift or quality (the monitor's policy).",
            stepped=True,
        ),
        timeseries(
            "Run duration (mean of finished runs)",
            [
                target(
                    "max(tuneloop_retrain_run_duration_seconds_sum) / "
                    "max(tuneloop_retrain_run_duration_seconds_count)",
                    "mean duration",
                )
            ],
            description="Wall time from start to end of finished runs, training and gate.",
            unit="s",
        ),
        timeseries(
            "Last run duration",
            [target("max(tuneloop_retrain_last_run_duration_seconds)", "last run")],
            description="Wall time of the most recently finished run.",
            unit="s",
        ),
        timeseries(
            "Gate verdicts",
            [target("max by (verdict) (tuneloop_retrain_verdicts)", "{{verdict}}")],
            description="Challengers promoted or rejected by the evaluation gate.",
            stepped=True,
        ),
        timeseries(
            "Champion version over time",
            [target("max(tuneloop_retrain_champion_version)", "champion")],
            description="Steps up on promotion, down on rollback (annotated).",
            unit="prefix:v",
            stepped=True,
        ),
        timeseries(
            "Training progress",
            [target("max(tuneloop_retrain_run_progress)", "progress")],
            description="Training progress reported by the worker.",
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        alert_list("retraining"),
    ]
    return dashboard(
        uid="tuneloop-retraining",
        title="tuneloop / Retraining",
        description="Retrain runs, the evaluation gate and the champion.",
        panels=panels,
        annotations=[
            annotation(
                "Champion changes",
                "changes(max(tuneloop_retrain_champion_version)[1m:]) > 0",
                title="champion changed",
                text="a promotion or a rollback",
                color="green",
            )
        ],
    )
