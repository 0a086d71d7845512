"""The ``postflow-webhooks`` command line: serve, tunnel, simulate, inspect, diagnose."""

from __future__ import annotations

import click

from postflow_webhooks import __version__
from postflow_webhooks.app.cli import (
    doctor,
    frameio,
    healthcheck,
    inspect,
    migrate,
    send,
    simulate,
)
from postflow_webhooks.app.cli.common import settings_for
from postflow_webhooks.app.cli.serve import serve, tunnel


class Commands(click.Group):
    """A group that lists its commands in the order they were added, with whole summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order of a first run: serve, try, look, diagnose, Frame.io."""
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its first sentence in full, wrapped rather than cut with '...'."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="postflow-webhooks")
def main() -> None:
    """Receive Frame.io webhooks for PostFlow: serve, inspect, simulate, diagnose.

    Settings come from config/*.json, POSTFLOW_* variables and flags
    (docs/configuration.md). Start with 'serve' (or 'make run'), try it with
    'simulate' or 'send', check a setup with 'doctor'.
    """


main.add_command(serve)
main.add_command(tunnel)
simulate.register(main, settings_for)
send.register(main, settings_for)
inspect.register(main, settings_for)
healthcheck.register(main, settings_for)
doctor.register(main, settings_for)
frameio.register_commands(main, settings_for)
migrate.register(main, settings_for)
