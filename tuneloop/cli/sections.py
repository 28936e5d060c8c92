"""The top command's `--help`: commands in sections, the developer tools apart from the rest."""

from __future__ import annotations

import click

from tuneloop.cli.errors import Cli

# Each command's section; one not named here is listed under the second (what a user runs).
SECTIONS: dict[str, tuple[str, ...]] = {
    "Run the loop": ("up", "serve", "worker", "beat", "init", "db", "gc", "backup", "restore"),
    "Use it": (),
    "Developer tools": ("bench", "drill", "settings"),
}
USE = "Use it"


class SectionedCli(Cli):
    """`Cli`, whose help lists its commands by section (see SECTIONS)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write each section's commands with their short help, sections in SECTIONS' order."""
        rows: dict[str, list[tuple[str, str]]] = {title: [] for title in SECTIONS}
        width = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            title = next((t for t, names in SECTIONS.items() if name in names), USE)
            rows[title].append((name, command.get_short_help_str(width)))
        for title, listed in rows.items():
            if listed:
                with formatter.section(title):
                    formatter.write_dl(listed)
