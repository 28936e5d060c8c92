"""`tuneloop drill`: run the drill, or one of its offline tools (`gate`, `curve`, `data`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tuneloop.drill.plotting import missing

_FORWARD = {"ignore_unknown_options": True, "allow_extra_args": True}
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(invoke_without_command=True)
@click.option(
    "--task",
    type=click.Choice(["classification", "generation"]),
    default="classification",
    show_default=True,
    help="Generation rows are {prompt, reference}; figures are then mean ROUGE-L.",
)
@click.option("--reference", type=_FILE, help="REF: the old domain (optional for generation).")
@click.option("--shifted", type=_FILE, help="SHIFT: the new domain.")
@click.option(
    "--model", type=click.Path(exists=True, path_type=Path), help="Generation: v1's model."
)
@click.option(
    "--zero-shot", is_flag=True, help="Start from the zero-shot default, not init --data."
)
@click.option("--oracle", is_flag=True, help="Also fine-tune on all labeled SHIFT rows (recovery).")
@click.option(
    "--feedback-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of predictions users rate [default: 0.3; generation 0.6].",
)
@click.option(
    "--review-budget",
    type=click.IntRange(1, 100),
    default=None,
    help="Labels per 100 predictions from the review queue (true labels, source review) "
    "instead of random user feedback; compare with --feedback-rate N/100. Classification only.",
)
@click.option(
    "--stream-rows", type=click.IntRange(min=1), help="Generation: SHIFT rows streamed [400]."
)
@click.option(
    "--held-rows", type=click.IntRange(min=1), help="Generation: SHIFT rows held out [100]."
)
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
@click.pass_context
def drill(
    ctx: click.Context, json_path: Path | None, report_path: Path | None, **options: Any
) -> None:
    """Replay a domain shift through the running system; report detection and recovery.

    With a subcommand, run one of the drill's offline tools instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    required = ("shifted",) if options["task"] == "generation" else ("reference", "shifted")
    for name in required:
        if options[name] is None:
            raise click.UsageError(f"Missing option '--{name}'.", ctx=ctx)
    if options["review_budget"] is not None:
        if options["task"] != "classification":
            raise click.UsageError("--review-budget is for classification drills", ctx=ctx)
        if options["feedback_rate"] is not None:
            raise click.UsageError("--review-budget replaces --feedback-rate; give one", ctx=ctx)
    if report_path is not None and (why := missing()):
        raise click.UsageError(f"--report: {why}", ctx=ctx)
    from tuneloop.drill.console import run

    sys.exit(run(options, json_path=json_path, report_path=report_path))


@drill.command(context_settings=_FORWARD, add_help_option=False)
@click.pass_context
def gate(ctx: click.Context) -> None:
    """Replay a kept drill home's gate with its own labels (`--help` for the arguments)."""
    from tuneloop.drill.gate import main

    sys.exit(main(ctx.args))


@drill.command(context_settings=_FORWARD, add_help_option=False)
@click.pass_context
def curve(ctx: click.Context) -> None:
    """The shift's learning curve on a kept drill home's labels (`--help`: the arguments)."""
    from tuneloop.drill.curve import main

    sys.exit(main(ctx.args))


@drill.command(context_settings=_FORWARD, add_help_option=False)
@click.pass_context
def data(ctx: click.Context) -> None:
    """Convert Blitzer reviews (SRC OUT [DOMAIN ...]), SciTLDR (--scitldr SRC.jsonl OUT.jsonl)
    or CLINC150 into its two drills (--clinc150 SRC OUT [--per-intent N])."""
    if ctx.args[:1] == ["--scitldr"]:
        from tuneloop.drill.textgen import convert_scitldr

        sys.exit(convert_scitldr(ctx.args[1:]))
    if ctx.args[:1] == ["--clinc150"]:
        from tuneloop.drill.clinc import main as convert_clinc

        sys.exit(convert_clinc(ctx.args[1:]))
    from tuneloop.drill.data import main

    sys.exit(main(ctx.args))
