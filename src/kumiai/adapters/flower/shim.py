"""The one FAB kumiai submits to a SuperLink: a fixed shim, with no code in it.

In Flower's deployment engine the SuperLink ships every run's app (a FAB) to the nodes, so
whoever runs the SuperLink would choose the code a member's node executes. kumiai's nodes
never run code from a FAB: each runs its own installed, guarded ClientApp, and refuses every
run whose FAB is not this shim, byte for byte (its SHA-256 is pinned here, on both sides).
The shim only names the components Flower requires; nothing loads them.

Flower builds a FAB deterministically (fixed zip dates), so the hash is a constant;
`tests/adapters/test_deployment.py` fails when a Flower upgrade changes it.
"""

import functools
import hashlib
import warnings

SHIM_PYPROJECT = b"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "kumiai-job"
version = "1.0.0"
description = "kumiai's job shim: each node runs its own installed, guarded ClientApp"
license = "Apache-2.0"

[tool.flwr.app]
publisher = "kumiai"

[tool.flwr.app.components]
serverapp = "kumiai.shim:serverapp"
clientapp = "kumiai.shim:clientapp"
"""

SHIM_SHA256 = "d1aa90d038a22c821aca3a03112ca56dca79aed6b00af91e4da958709b0b3f4b"
"""The SHA-256 of `shim_fab()` under Flower 1.42; a node refuses any other app."""


@functools.cache
def shim_fab() -> bytes:
    from flwr.cli.build import build_fab_from_files

    with warnings.catch_warnings():  # pathspec's deprecation of a pattern Flower uses
        warnings.simplefilter("ignore", DeprecationWarning)
        return build_fab_from_files({"pyproject.toml": SHIM_PYPROJECT})[0]


def fab_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
