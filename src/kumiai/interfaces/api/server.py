"""`kumiai coordinator serve`: the API under uvicorn, over the TLS files `coordinator init` made."""

from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from kumiai.interfaces.api.app import create_app
from kumiai.services.coordinator_tls import serving_files

if TYPE_CHECKING:
    from kumiai.adapters.flower.superlink import SuperLinkAddress


def serve(home: Path, host: str, port: int, superlink: "SuperLinkAddress | None" = None) -> None:
    """Run until SIGTERM or Ctrl-C; refused before listening when the TLS files are missing.

    `superlink` is the SuperLink this process supervises: `POST /jobs` runs jobs on it.
    """
    files = serving_files(home)
    app = create_app(home)
    app.state.superlink = superlink
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        log_level="warning",
        server_header=False,
    )
