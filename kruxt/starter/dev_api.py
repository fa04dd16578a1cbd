"""The API child of ``kruxt dev``: ``kruxt api`` serving a socket its parent bound.

``kruxt dev`` binds the API's port itself (port 0: the OS chooses one) and hands the listening
socket down, so the port it prints is the one served and nothing can take it in between.
Run as ``python -m kruxt.starter.dev_api FD``.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from kruxt.adapters.settings import load_settings
from kruxt.adapters.telemetry import configure_logging, configure_tracing
from kruxt.starter.api.main import app_from_settings, uvicorn_config


def serve(fd: int) -> None:
    """Serve the API (configured as ``kruxt api`` is) on the inherited listening socket ``fd``."""
    settings = load_settings()
    configure_logging(settings.log_level)
    configure_tracing("kruxt-api", settings.otlp_endpoint)
    settings.require_intake_token()
    settings.require_database_url()
    settings.require_audit_keyring()
    sock = socket.socket(fileno=fd)  # family and type read from the descriptor
    uvicorn.Server(uvicorn_config(app_from_settings(settings), settings)).run(sockets=[sock])


if __name__ == "__main__":
    serve(int(sys.argv[1]))
