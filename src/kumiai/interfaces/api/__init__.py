"""The coordinator's HTTP API (`kumiai coordinator serve`): the read side, over TLS.

Each route is a thin call into the same service function the CLI command calls, and
returns the document that command's `--json` prints. Writes and authentication come later.
"""
