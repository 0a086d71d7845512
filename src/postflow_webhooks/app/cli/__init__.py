"""The ``postflow-webhooks`` command line: serve, tunnel, simulate, inspect, diagnose."""

from __future__ import annotations

import importlib

import click

from postflow_webhooks import __version__
from postflow_webhooks.app.cli.common import settings_for
from postflow_webhooks.app.cli.serve import serve, tunnel

# Each command, in the order of a first run, and the module that adds it (with
# the function that does). A module is imported only when one of its commands
# runs (or --help lists them all), so a frequent, short command such as
# ``healthcheck`` (a container's probe) does not load the whole receiver.
LAZY: dict[str, tuple[str, str]] = {
    "simulate": ("simulate", "register"),
    "send": ("send", "register"),
    "status": ("inspect", "register"),
    "uploads": ("inspect", "register"),
    "replay": ("inspect", "register"),
    "healthcheck": ("healthcheck", "register"),
    "doctor": ("doctor", "register"),
    "auth": ("frameio", "register_commands"),
    "register": ("frameio", "register_commands"),
    "unregister": ("frameio", "register_commands"),
    "migrate": ("migrate", "register"),
}


class Commands(click.Group):
    """A group whose commands load on first use, listed in first-run order with whole summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order of a first run: serve, try, look, diagnose, Frame.io."""
        return [*self.commands, *(name for name in LAZY if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing the module that adds it the first time it is needed."""
        if cmd_name not in self.commands and cmd_name in LAZY:
            module, function = LAZY[cmd_name]
            found = importlib.import_module(f"postflow_webhooks.app.cli.{module}")
            getattr(found, function)(self, settings_for)
        return super().get_command(ctx, cmd_name)

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
