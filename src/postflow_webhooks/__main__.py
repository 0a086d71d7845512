"""``python -m postflow_webhooks``: the ``postflow-webhooks`` command, for when it is not on PATH."""

from postflow_webhooks.app.cli import main

if __name__ == "__main__":
    main(prog_name="postflow-webhooks")
