"""The `tuneloop` command: the composition root that wires core, api, monitor and retrain."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from core.settings import get_settings
from tuneloop.cli import checks, use
from tuneloop.cli import loop as loop_commands
from tuneloop.cli.backup import backup as backup_command
from tuneloop.cli.backup import restore as restore_command
from tuneloop.cli.canary import canary as canary_group
from tuneloop.cli.erase import erase as erase_command
from tuneloop.cli.gc import gc as gc_command
from tuneloop.cli.history import history as history_command
from tuneloop.cli.keys import keys as keys_group
from tuneloop.cli.runs import runs as runs_group
from tuneloop.cli.sections import SectionedCli
from tuneloop.drill.cli import drill as drill_group
from tuneloop.wiring import registry_of


@click.group(cls=SectionedCli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tuneloop", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """tuneloop: serve a model, watch it, retrain it on feedback, promote the better one."""
    if debug:
        os.environ["TUNELOOP_DEBUG"] = "1"  # the children `up` starts inherit it


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
    help="Labeled JSONL/CSV (text, label): fine-tune v1 on it, keep a golden split. "
    "Generation: prompt/reference JSONL, the golden set.",
)
@click.option(
    "--labels",
    "label_specs",
    multiple=True,
    metavar="NAME=DESCRIPTION",
    help="Zero-shot labels with descriptions (repeat; a name repeated averages its "
    "descriptions); default negative/positive.",
)
@click.option(
    "--task",
    type=click.Choice(["classification", "generation"]),
    default="classification",
    show_default=True,
    help="The kind of model to start from.",
)
@click.option(
    "--model",
    "model_name",
    default="smollm2",
    show_default=True,
    help="Generation: the packaged SmolLM2, a local folder or a .gguf file.",
)
@click.option("--force", is_flag=True, help="Replace an existing champion.")
def init(
    data: Path | None, label_specs: tuple[str, ...], task: str, model_name: str, force: bool
) -> None:
    """Create the first model version and make it champion (no-op when one exists)."""
    from core.store.db import upgrade
    from tuneloop.bootstrap import init_generator, init_zero_shot, keep_champion, parse_labels

    settings = get_settings()
    upgrade(settings.database_url)
    registry = registry_of(settings)
    if (kept := keep_champion(registry.champion(), force=force)) is not None:
        click.echo(kept.message)  # before any model code is imported: a no-op answers at once
        return
    if task == "generation":
        if label_specs:
            raise click.UsageError("--labels is for classification")
        from core.data import read_pairs

        try:
            golden = read_pairs(data) if data is not None else None
        except (ValueError, KeyError) as exc:
            raise click.BadParameter(str(exc), param_hint="--data") from None
        from tuneloop.bootstrap import GENERATOR_STEPS
        from tuneloop.cli.progress import Steps

        with Steps(f"init {model_name}", total=len(GENERATOR_STEPS)) as steps:
            result = init_generator(
                settings, registry, model=model_name, golden=golden, force=force, step=steps.step
            )
    elif data is not None:
        from core.data import read_labeled
        from tuneloop.bootstrap_data import init_from_data
        from tuneloop.cli.progress import training_bar

        try:
            read_labeled(data)  # refused here in one line, before any model is built
        except (ValueError, KeyError) as exc:
            raise click.BadParameter(str(exc), param_hint="--data") from None
        with training_bar(f"fine-tuning on {data.name}") as report:
            result = init_from_data(settings, registry, data=data, force=force, progress=report)
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
@loop_commands.NO_BANNER
def serve(host: str | None, port: int | None, workers: int | None, no_banner: bool) -> None:
    """Serve the champion over HTTP (predict, feedback, admin, /metrics, /docs)."""
    from tuneloop.cli.startup import summary
    from tuneloop.server import serve as run

    settings = get_settings()
    host, port = host or settings.api.host, port or settings.api.port
    if not no_banner:
        champion = registry_of(settings).champion()
        click.echo(
            summary(settings, host=host, port=port, champion=champion, processes="api"), err=True
        )
    run(settings, host=host, port=port, workers=workers or settings.api.workers)


@main.command()
@click.option("--host", default=None, help="Bind address of the api.")
@click.option("--port", type=int, default=None, help="Port of the api.")
def up(host: str | None, port: int | None) -> None:
    """Everything on one machine: migrate, init if needed, then api + worker + beat."""
    from core.store.db import upgrade
    from tuneloop.bootstrap import init_zero_shot, parse_labels
    from tuneloop.cli.startup import summary
    from tuneloop.up import run_all

    settings = get_settings()
    upgrade(settings.database_url)
    registry = registry_of(settings)
    click.echo(init_zero_shot(settings, registry, labels=parse_labels(())).message)
    host, port = host or settings.api.host, port or settings.api.port
    lines = summary(
        settings, host=host, port=port, champion=registry.champion(), processes="worker, beat"
    )
    click.echo(lines, err=True)
    sys.exit(run_all(host=host, port=port))


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Raw forward, the served api and a naive server side by side (`--help`: its options)."""
    from tuneloop.checkout import run_benchmark

    sys.exit(run_benchmark("serving", ctx.args))


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


for _command in loop_commands.COMMANDS:
    main.add_command(_command)
main.add_command(keys_group)
main.add_command(runs_group)
loop_commands.models.add_command(history_command)
loop_commands.models.add_command(canary_group)
main.add_command(gc_command)
main.add_command(backup_command)
main.add_command(restore_command)
main.add_command(drill_group)
main.add_command(use.predict)
loop_commands.feedback.add_command(use.give)
loop_commands.feedback.add_command(use.import_feedback)
loop_commands.feedback.add_command(erase_command)
for _command in checks.COMMANDS:
    loop_commands.monitor.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
