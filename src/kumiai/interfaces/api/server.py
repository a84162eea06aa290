"""`kumiai coordinator serve`: the API under uvicorn, over the TLS files `coordinator init` made."""

from pathlib import Path

import uvicorn

from kumiai.interfaces.api.app import create_app
from kumiai.services.coordinator_tls import serving_files


def serve(home: Path, host: str, port: int) -> None:
    """Run until SIGTERM or Ctrl-C; refused before listening when the TLS files are missing."""
    files = serving_files(home)
    app = create_app(home)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        log_level="warning",
        server_header=False,
    )
