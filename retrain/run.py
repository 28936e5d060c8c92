"""The run a worker holds: its steps, each a write fenced by the lease.

A worker that lost the lease (it stalled, the reaper re-enqueued the run, another worker claimed
it) must not write: every method below checks ownership in the same transaction as its write
and raises `LeaseLost` instead, so the new owner's record is never overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.registry import PENDING, VersionInfo
from core.rollout import roll_out
from core.settings import Settings
from core.states import EventKind, RunState, VersionStatus
from core.store.events import POLICY, Cause, record_event
from core.store.run_queries import get_run
from core.store.runs import fail, finish, heartbeat, owned_run, runs_folder, update_run
from core.store.tables import RetrainRun
from retrain.context import Context, LeaseLost, compact
from retrain.gate import Verdict
from retrain.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One retrain run as `owner` holds it: context, run id and lease owner in one value."""

    ctx: Context
    id: str
    owner: str

    @property
    def settings(self) -> Settings:
        """The worker's settings."""
        return self.ctx.settings

    @property
    def folder(self) -> Path:
        """Where the run's files go: its data snapshots (provenance)."""
        return runs_folder(self.settings.artifacts) / self.id

    def progress(self, *, part: tuple[int, int] = (0, 1)) -> Progress:
        """A reporter that renews the lease as training `part` = (i of n) progresses."""
        lease = self.settings.retrain.lease_seconds
        index, parts = part

        def report(fraction: float, loss: float | None) -> None:
            # Training is 90 % of a run; data and evaluation share the rest.
            share = (index + fraction) / parts
            alive = heartbeat(
                self.ctx.db,
                self.id,
                owner=self.owner,
                lease_seconds=lease,
                progress=0.05 + 0.85 * share,
                loss=loss,
            )
            if not alive:
                raise LeaseLost(self.id)

        return report

    def cause(self, reason: str) -> Cause:
        """The cause of a change this run makes outside its own transaction (a registration)."""
        check_id = get_run(self.ctx.db, self.id).check_id
        return Cause(POLICY, reason, run_id=self.id, check_id=check_id)

    def update(self, **fields: Any) -> None:
        """Write fields of the run record, or raise `LeaseLost`."""
        if not update_run(self.ctx.db, self.id, owner=self.owner, **fields):
            raise LeaseLost(self.id)

    def record_start(self, champion: VersionInfo, *, dataset_hash: str, snapshot: Path) -> None:
        """Put the run's champion and its data snapshot on its record, or `LeaseLost`."""
        self.update(
            champion_version=champion.version,
            dataset_hash=dataset_hash,
            dataset_path=str(snapshot),
            progress=0.01,
        )

    def note(self, **params: Any) -> None:
        """Add `params` to the run's record (its request, a search's trials, its holdout's rule),
        or `LeaseLost`."""
        with self.owned() as (_, row):
            row.params = {**(row.params or {}), **params}

    @contextmanager
    def owned(self) -> Iterator[tuple[Session, RetrainRun]]:
        """A transaction holding the run row locked, or `LeaseLost` before anything is written."""
        with self.ctx.db.session() as session:
            row = owned_run(session, self.id, owner=self.owner)
            if row is None:
                raise LeaseLost(self.id)
            yield session, row

    def mark(
        self,
        version: str,
        status: VersionStatus | None = None,
        *,
        figures: dict[str, Any] | None = None,
        reason: str = "",
        **params: Any,
    ) -> None:
        """Set `version`'s status (for `reason`) and its gate `figures` (`version_figures`),
        either or both, and add `params` to the run's record."""
        with self.owned() as (session, row):
            if status is not None:
                _judge(self.ctx, session, row, version, status, reason)
            if figures:
                self.ctx.registry.update_metrics(session, version, figures)
            row.params = {**(row.params or {}), **params}

    def conclude(
        self,
        candidate: VersionInfo | None,
        metrics: dict[str, Any],
        verdict: Verdict,
        *,
        tested: VersionInfo | None = None,
    ) -> RunState:
        """Promote or reject `candidate`, in one transaction with the run's final state.

        `candidate` is None for a run rejected before it trained. The gate's figures go on the
        record of the version `metrics` scored: `tested`, where a refit is concluded in its
        place, else `candidate`.
        """
        state = RunState.PROMOTED if verdict.promote else RunState.REJECTED
        status = PENDING if verdict.pending else VersionStatus.REJECTED
        scored = tested or candidate
        reasons = "; ".join(verdict.reasons)
        answer = verdict.to_dict()
        with self.owned() as (session, row):
            if candidate is not None and verdict.promote:
                rollout = roll_out(
                    session,
                    candidate.version,
                    mode=self.settings.retrain.rollout,
                    share=self.settings.canary.share,
                    cause=_policy(row, reasons),
                )
                state = RunState.CANARY if rollout.mode == "canary" else state
                answer["rollout"] = rollout.to_dict()
            elif candidate is not None:
                _judge(self.ctx, session, row, candidate.version, status, reasons)
            if scored is not None:
                figures = version_figures(
                    metrics, run_id=self.id, champion=row.champion_version, **brief(verdict)
                )
                self.ctx.registry.update_metrics(session, scored.version, figures)
            finish(
                session,
                row,
                state=state,
                version=candidate.version if candidate else None,
                metrics=compact(metrics),
                verdict=answer,
            )
        version = candidate.version if candidate else "(not trained)"
        if candidate is not None and not verdict.promote:
            version = f"{version} ({status})"
        log.info("run %s %s %s: %s", self.id, state, version, reasons)
        return state

    def fail(self, error: str) -> bool:
        """Mark the run failed, unless the lease is another worker's now (then False)."""
        return fail(self.ctx.db, self.id, owner=self.owner, error=error)


def _policy(row: RetrainRun, reason: str) -> Cause:
    """The cause of a change a run's verdict makes: the policy, with the run and its check."""
    return Cause(POLICY, reason, run_id=row.id, check_id=row.check_id)


def _judge(
    ctx: Context, session: Session, row: RetrainRun, version: str, status: VersionStatus, why: str
) -> None:
    """Set a version's status; a rejection is an event of the audit trail, with its reasons."""
    ctx.registry.mark(session, version, status=status)
    if status == VersionStatus.REJECTED:
        cause = _policy(row, why or "rejected by the gate")
        record_event(
            session, EventKind.REJECTED, version, previous=row.champion_version, cause=cause
        )


def version_figures(
    metrics: dict[str, Any], *, run_id: str, champion: str | None, **gate: Any
) -> dict[str, Any]:
    """What a version's record keeps of the gate that judged it.

    `metrics` are the gate's `{"champion": sets, "challenger": sets}`; the version keeps its
    own evaluations (`golden`, and `feedback`: the gate's holdout), the champion's on the same
    rows, and under `gate` the run, the champion's version and `gate` (the verdict in brief).
    A later verdict on the same version (its second look) replaces them.
    """
    sets = compact(metrics)
    return {
        **sets.get("challenger", {}),
        "champion": sets.get("champion", {}),
        "gate": {"run_id": run_id, "champion_version": champion, **gate},
    }


def brief(verdict: Verdict) -> dict[str, Any]:
    """The verdict without its reasons: what a version's record needs of it."""
    return {k: v for k, v in verdict.to_dict().items() if k != "reasons"}
