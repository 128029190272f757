"""Test support shared by fixtures and the golden-history recorder."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.settings import Settings
from runtime.temporal_server import DevServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_dev_server(state_dir: Path) -> Iterator[DevServer]:
    """A dev server of its own on free ports, so tests never touch a user's server."""
    ports = {"P2E_TEMPORAL_PORT": str(free_port()), "P2E_TEMPORAL_UI_PORT": str(free_port())}
    saved = {key: os.environ.get(key) for key in ports}
    os.environ.update(ports)
    server = DevServer(Settings(state_dir=state_dir))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
