"""`python -m kumiai` is the same as the `kumiai` command."""

from kumiai.interfaces.cli.main import run

run()
