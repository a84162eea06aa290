"""`python -m kumiai` is the same as the `kumiai` command."""

from kumiai.interfaces.cli.collector import pause_collection

pause_collection()  # before the imports below: they are most of a read command's start-up

from kumiai.interfaces.cli.main import run  # noqa: E402

run()
