"""`tuneloop keys`: create, list, limit and revoke API keys (only their hashes are stored)."""

from __future__ import annotations

import click

from core.keys import Limits, Scope, check_rate, parse_scopes
from core.settings import get_settings
from core.store.db import Database
from core.store.keys import (
    KeyExists,
    KeyNotFound,
    create_key,
    limit_key,
    list_keys,
    revoke_key,
)

RATE_HELP = "Most {} per second, a token bucket (`none`: no limit); see docs/operations.md."


def _db() -> Database:
    return Database(get_settings().database_url)


def require_key(db: Database, name: str) -> None:
    """A key that exists (or the admin token's name): a typo must not read as 'nothing to do'."""
    from core.keys import ADMIN_TOKEN_NAME

    if name != ADMIN_TOKEN_NAME and name not in {k.name for k in list_keys(db)}:
        raise click.BadParameter(f"no key named {name!r}", param_hint="--key")


def _per_second(value: str, option: str) -> float | None:
    if value.strip().lower() == "none":
        return None
    try:
        return check_rate(float(value))
    except ValueError:
        raise click.BadParameter("a number above 0, or none", param_hint=option) from None


def _given(rate: str | None, texts_rate: str | None) -> dict[str, float | None]:
    """The limits given on the command line, by `Limits` field."""
    options = {"requests": (rate, "--rate"), "texts": (texts_rate, "--texts-rate")}
    return {f: _per_second(v, option) for f, (v, option) in options.items() if v is not None}


def _shown(limits: Limits) -> str:
    """`20 requests/s, 500 texts/s`, or `none`."""
    rates = (("requests", limits.requests), ("texts", limits.texts))
    return ", ".join(f"{rate:g} {kind}/s" for kind, rate in rates if rate) or "none"


@click.group()
def keys() -> None:
    """API keys: who may predict, give feedback or administer."""


@keys.command("create")
@click.option("--name", required=True, help="Who uses the key; feedback records it. Never reused.")
@click.option("--scopes", required=True, help=f"Comma-separated, of {', '.join(Scope)}.")
@click.option("--rate", metavar="PER_SECOND", help=RATE_HELP.format("requests"))
@click.option(
    "--texts-rate",
    metavar="PER_SECOND",
    help=RATE_HELP.format("texts (predict inputs, generation prompts)"),
)
def keys_create(name: str, scopes: str, rate: str | None, texts_rate: str | None) -> None:
    """Create a key and print it once, alone on the last line; the store keeps only its hash."""
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from None
    limits = Limits(**_given(rate, texts_rate))
    try:
        key, info = create_key(_db(), name=name, scopes=parsed, limits=limits)
    except KeyExists as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    click.echo(
        f"key {info.name} ({info.prefix}...) with scopes {','.join(info.scopes)}, "
        f"limits {_shown(info.limits)}:"
    )
    click.echo("store it now: it is not shown again", err=True)
    click.echo(key)


@keys.command("list")
def keys_list() -> None:
    """Every key by its prefix (never the key), with its scopes, limits and times."""
    click.echo(f"{'name':20} {'prefix':10} {'scopes':24} {'limits':32} {'created':16} revoked")
    for k in list_keys(_db()):
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-"
        click.echo(
            f"{k.name:20} {k.prefix:10} {','.join(k.scopes):24} {_shown(k.limits):32} "
            f"{k.created_at:%Y-%m-%d %H:%M} {revoked}"
        )


@keys.command("limit")
@click.argument("name")
@click.option("--rate", metavar="PER_SECOND", help=RATE_HELP.format("requests"))
@click.option("--texts-rate", metavar="PER_SECOND", help=RATE_HELP.format("texts"))
@click.option("--none", "unlimited", is_flag=True, help="Clear both limits.")
def keys_limit(name: str, rate: str | None, texts_rate: str | None, unlimited: bool) -> None:
    """Set or clear the rate limits of the key NAME (those not given are kept); every api
    replica applies them within TUNELOOP_API_KEY_REFRESH_SECONDS."""
    changes = _given(rate, texts_rate)
    if unlimited == bool(changes):
        raise click.UsageError("give --rate and/or --texts-rate, or --none alone")
    try:
        info = limit_key(_db(), name, **(changes or {"requests": None, "texts": None}))
    except KeyNotFound:
        raise click.ClickException(f"no key named {name!r}") from None
    click.echo(f"key {info.name} ({info.prefix}...) limits: {_shown(info.limits)}")


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the key NAME; every api replica refuses it within TUNELOOP_API_KEY_REFRESH_SECONDS."""
    try:
        info = revoke_key(_db(), name)
    except KeyNotFound:
        raise click.ClickException(f"no key named {name!r}") from None
    click.echo(f"revoked {info.name} ({info.prefix}...) at {info.revoked_at:%Y-%m-%d %H:%M:%S}")
