"""`tuneloop models canary start | stop | show`: a challenger on a share of the clients.

Like `models promote`, they act on the store, which every api replica follows on its champion
poll, so they need no running api and no key. The test's module (numpy, scipy) is imported only
when a command runs, so other commands start as fast as before.
"""

from __future__ import annotations

from typing import Any

import click

from core.registry import VersionNotFound
from core.settings import get_settings
from core.store.canary import ARMS, CanaryRunning, latest_canary
from core.store.events import CLI, Cause
from tuneloop.wiring import registry_of

REASON = click.option(
    "--reason", default="manual", show_default=True, help="Why, for the event log."
)


@click.group("canary")
def canary() -> None:
    """Serve a gate-passed version to a sticky share of the clients; the sequential test on
    their feedback promotes it, aborts it or lets it expire."""


@canary.command("start")
@click.argument("version")
@click.option(
    "--share",
    type=float,
    required=True,
    help="Share of the clients (keys, or addresses in open mode) it serves, at most half.",
)
@REASON
def canary_start(version: str, share: float, reason: str) -> None:
    """Start a canary of VERSION (it must have passed the offline gate)."""
    from core.canary import MAX_SHARE, CanaryRefused, start_canary

    if not 0.0 < share <= MAX_SHARE:
        raise click.BadParameter(f"{share:g} is not in (0, {MAX_SHARE:g}]", param_hint="--share")
    registry = registry_of(get_settings())
    try:
        row = start_canary(registry, version, share=share, cause=Cause(CLI, reason))
    except VersionNotFound:
        raise click.ClickException(f"unknown version {version}") from None
    except (CanaryRefused, CanaryRunning) as exc:
        raise click.ClickException(f"not started: {exc}") from None
    finally:
        registry.db.dispose()
    click.echo(
        f"canary {row.id}: {version} serves {share:.0%} of clients beside {row.champion_version}"
    )


@canary.command("stop")
@click.argument("version")
@REASON
def canary_stop(version: str, reason: str) -> None:
    """Stop the canary of VERSION by hand: the champion serves every client again."""
    from core.canary import NoCanary, stop_canary

    registry = registry_of(get_settings())
    try:
        row = stop_canary(registry, version, cause=Cause(CLI, reason))
    except NoCanary as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        registry.db.dispose()
    click.echo(f"canary {row.id} of {version} stopped; {row.champion_version} serves all")


@canary.command("show")
def canary_show() -> None:
    """The running canary, else the last one: its arms and the test's last look."""
    registry = registry_of(get_settings())
    try:
        row = latest_canary(registry.db)
    finally:
        registry.db.dispose()
    if row is None:
        click.echo("no canary has run")
        return
    for line in canary_lines(row.to_dict()):
        click.echo(line)


def canary_lines(state: dict[str, Any]) -> list[str]:
    """A canary's answer (`CanaryRow.to_dict`) as a few lines of text."""
    lines = [
        f"canary {state['id']}: {state['version']} beside {state['champion_version']} at "
        f"{state['share']:.0%}, {state['state']} (started {state['started_at'][:19]} by "
        f"{state['actor']})"
    ]
    for arm in ARMS:
        seen = state.get("arms", {}).get(arm, {})
        line = f"  {arm:8} rated {seen.get('items', 0):>6}  rating {_figure(seen.get('rating'))}  "
        if "preferred" in seen:  # a generation canary's
            line += f"preferred {seen['preferred']:>6}  rouge_l {_figure(seen.get('rouge_l'))}"
        else:
            line += f"labeled {seen.get('labeled', 0):>6}  accuracy {_figure(seen.get('accuracy'))}"
        lines.append(line)
    test = f"  test: {state.get('decision', 'continue')} on {state.get('metric') or '-'}"
    if state.get("p_promote") is not None:
        test += (
            f", difference {state['difference']:+.4f}, p(promote) {state['p_promote']:.4g}, "
            f"p(abort) {state['p_abort']:.4g}"
        )
    lines.append(test + f" after {state.get('hours', 0.0):.1f} h")
    return lines


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
