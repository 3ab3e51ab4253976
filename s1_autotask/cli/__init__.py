"""The ``s1-autotask`` command line.

This package is the application shell: the one place in the library that starts
Prefect flows or servers. Commands import Prefect inside their bodies, so importing
the library never imports Prefect.
"""

# Importing a command module registers its commands on `app`.
from s1_autotask.cli import _backfill, _deliveries, _servers, _tickets  # noqa: F401
from s1_autotask.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the command line."""
    app(prog_name="s1-autotask")
