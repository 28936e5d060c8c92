"""The `tuneloop` command: the composition root that wires core, api, monitor and retrain."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from core.registry import Registry
from core.settings import Settings, get_settings
from core.store.db import Database
from tuneloop import loop_commands


def _registry(settings: Settings) -> Registry:

    return Registry(Database(settings.database_url), settings.artifacts)


@click.group()
def main() -> None:
    """tuneloop: serve a model, watch it, retrain it on feedback, promote the better one."""


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations up to the latest."""
    from core.store.db import current_revision, upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    click.echo(f"database at revision {current_revision(settings.database_url)}")


@main.command()
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labeled JSONL/CSV (text, label): fine-tune v1 on it, keep a golden split.",
)
@click.option(
    "--labels",
    "label_specs",
    multiple=True,
    metavar="NAME=DESCRIPTION",
    help="Zero-shot labels with descriptions (repeat); default negative/positive.",
)
@click.option("--force", is_flag=True, help="Replace an existing champion.")
def init(data: Path | None, label_specs: tuple[str, ...], force: bool) -> None:
    """Create the first model version and make it champion (no-op when one exists)."""
    from core.store.db import upgrade
    from tuneloop.bootstrap import init_zero_shot, parse_labels

    settings = get_settings()
    upgrade(settings.database_url)
    registry = _registry(settings)
    if data is not None:
        from tuneloop.bootstrap_data import init_from_data

        result = init_from_data(settings, registry, data=data, force=force)
    else:
        try:
            labels = parse_labels(label_specs)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--labels") from None
        result = init_zero_shot(settings, registry, labels=labels, force=force)
    click.echo(result.message)


@main.command()
@click.option("--host", default=None, help="Bind address (default TUNELOOP_API_HOST).")
@click.option("--port", type=int, default=None, help="Port (default TUNELOOP_API_PORT).")
@click.option("--workers", type=int, default=None, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the champion over HTTP (predict, feedback, admin, /metrics, /docs)."""
    from tuneloop.server import serve as run

    settings = get_settings()
    run(
        settings,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers or settings.api.workers,
    )


@main.command()
@click.option("--host", default=None, help="Bind address of the api.")
@click.option("--port", type=int, default=None, help="Port of the api.")
def up(host: str | None, port: int | None) -> None:
    """Everything on one machine: migrate, init if needed, then api + worker + beat."""
    from core.store.db import upgrade
    from tuneloop.bootstrap import init_zero_shot, parse_labels
    from tuneloop.up import run_all

    settings = get_settings()
    upgrade(settings.database_url)
    click.echo(init_zero_shot(settings, _registry(settings), labels=parse_labels(())).message)
    sys.exit(run_all(host=host or settings.api.host, port=port or settings.api.port))


@main.command()
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results to this file.",
)
@click.option("--duration", type=float, default=8.0, show_default=True, help="Seconds per level.")
@click.option("--warmup", type=float, default=2.0, show_default=True, help="Warm-up per level.")
@click.option("--raw-seconds", type=float, default=3.0, show_default=True, help="Per batch size.")
@click.option("--concurrency", default="1,8,32,64", show_default=True, help="HTTP levels.")
def bench(
    json_path: Path | None, duration: float, warmup: float, raw_seconds: float, concurrency: str
) -> None:
    """Measure raw forward, the served api and a naive server side by side (temporary home)."""
    import orjson

    from tuneloop.bench import BenchConfig, run_bench
    from tuneloop.bench_report import summary_lines

    levels = tuple(sorted({int(c) for c in concurrency.split(",") if c.strip()}))
    config = BenchConfig(
        duration=duration, warmup=warmup, raw_seconds=raw_seconds, concurrency=levels
    )
    result = run_bench(config, lambda line: click.echo(line, err=True))
    for line in summary_lines(result):
        click.echo(line)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        click.echo(f"wrote {json_path}")


@main.command()
@click.option(
    "--reference",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="REF: labeled JSONL/CSV of the old domain.",
)
@click.option(
    "--shifted",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SHIFT: labeled JSONL/CSV of the new domain.",
)
@click.option(
    "--zero-shot", is_flag=True, help="Start from the zero-shot default, not init --data."
)
@click.option("--oracle", is_flag=True, help="Also fine-tune on all labeled SHIFT rows (recovery).")
@click.option("--feedback-rate", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True)
@click.option("--check-every", type=click.IntRange(min=10), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the figures.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report (check reports go beside it).",
)
def drill(json_path: Path | None, report_path: Path | None, **options: Any) -> None:
    """Replay a domain shift through the running system; report detection and recovery."""
    from tuneloop.drill_cli import run

    sys.exit(run(options, json_path=json_path, report_path=report_path))


@main.command("settings")
@click.option(
    "--write-readme",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rewrite the settings table in this README instead.",
)
def settings_table(write_readme: Path | None) -> None:
    """Print every setting with its default as a Markdown table."""
    from tuneloop.settings_doc import markdown_table
    from tuneloop.settings_doc import write_readme as rewrite

    if write_readme is not None:
        rewrite(write_readme)
    else:
        click.echo(markdown_table())


@main.command("bench-retrain")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labeled JSONL/CSV used as feedback (default: synthetic).",
)
@click.option("-n", "n", type=int, default=2000, help="Feedback items.")
@click.option("--method", type=click.Choice(["lora", "full", "auto"]), default="lora")
@click.option("--seed", type=int, default=0)
@click.option("--json", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def bench_retrain(data: Path | None, n: int, method: str, seed: int, out: Path | None) -> None:
    """Time one retrain run from the zero-shot default on N labeled feedback items."""
    from tuneloop.bench_retrain import main as run

    result = run(
        data=data,
        n=n,
        method=method,
        seed=seed,
        out=out,
        say=lambda line: click.echo(line, err=True),
    )
    click.echo(
        f"{result['state']} in {result['seconds']} s (training "
        f"{result['train_seconds']} s); verdict: {result['verdict'].get('reasons')}"
    )


for _command in loop_commands.COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
