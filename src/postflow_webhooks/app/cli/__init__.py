"""The ``postflow-webhooks`` command line: serve, tunnel, simulate, inspect, diagnose."""

from __future__ import annotations

import click

from postflow_webhooks.app.cli import doctor, frameio, healthcheck, inspect, migrate, simulate
from postflow_webhooks.app.cli.common import settings_for
from postflow_webhooks.app.cli.serve import serve, tunnel


@click.group()
@click.version_option(package_name="postflow-webhooks")
def main() -> None:
    """Receive Frame.io webhooks for PostFlow: serve, inspect, simulate, diagnose."""


main.add_command(serve)
main.add_command(tunnel)
inspect.register(main, settings_for)
simulate.register(main, settings_for)
doctor.register(main, settings_for)
healthcheck.register(main, settings_for)
frameio.register_commands(main, settings_for)
migrate.register(main, settings_for)
