"""`tuneloop keys`: create, list and revoke API keys (only their hashes are stored)."""

from __future__ import annotations

import click

from core.keys import Scope, parse_scopes
from core.settings import get_settings
from core.store.db import Database
from core.store.keys import KeyExists, KeyNotFound, create_key, list_keys, revoke_key


def _db() -> Database:
    return Database(get_settings().database_url)


@click.group()
def keys() -> None:
    """API keys: who may predict, give feedback or administer."""


@keys.command("create")
@click.option("--name", required=True, help="Who uses the key; feedback records it. Never reused.")
@click.option("--scopes", required=True, help=f"Comma-separated, of {', '.join(Scope)}.")
def keys_create(name: str, scopes: str) -> None:
    """Create a key and print it once, alone on the last line; the store keeps only its hash."""
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from None
    try:
        key, info = create_key(_db(), name=name, scopes=parsed)
    except KeyExists as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    click.echo(f"key {info.name} ({info.prefix}...) with scopes {','.join(info.scopes)}:")
    click.echo("store it now: it is not shown again", err=True)
    click.echo(key)


@keys.command("list")
def keys_list() -> None:
    """Every key by its prefix (never the key), with its scopes and times."""
    click.echo(f"{'name':20} {'prefix':10} {'scopes':24} {'created':16} revoked")
    for k in list_keys(_db()):
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-"
        click.echo(
            f"{k.name:20} {k.prefix:10} {','.join(k.scopes):24} "
            f"{k.created_at:%Y-%m-%d %H:%M} {revoked}"
        )


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the key NAME; every api replica refuses it within TUNELOOP_API_KEY_REFRESH_SECONDS."""
    try:
        info = revoke_key(_db(), name)
    except KeyNotFound:
        raise click.ClickException(f"no key named {name!r}") from None
    click.echo(f"revoked {info.name} ({info.prefix}...) at {info.revoked_at:%Y-%m-%d %H:%M:%S}")
