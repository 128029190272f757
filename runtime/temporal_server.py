"""The embedded Temporal dev server: find or build the CLI, start it detached, stop it.

The binary is looked up in this order: $P2E_TEMPORAL_BIN, `temporal` on PATH, the project
cache (outside the repository), the Temporal SDK's own download, and finally
`go install github.com/temporalio/cli/cmd/temporal@<cli_version>` into the cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from runtime.errors import ConfigError, DevServerError, ProvisioningError
from runtime.settings import Settings

MIN_GO = (1, 25)
SEARCH_ATTRIBUTE_TYPES = {"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}


class DevServerConfig(BaseModel):
    """deploy/temporal-dev.yaml."""

    model_config = ConfigDict(extra="forbid")

    cli_version: str
    go_package: str
    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    db_file: str = "temporal.db"
    log_level: str = "warn"
    startup_timeout_s: float = 30.0
    sqlite_pragmas: dict[str, str] = {}
    search_attributes: dict[str, str] = {}
    dynamic_config: dict[str, object] = {}

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"


class ServerRecord(BaseModel):
    """What `p2e server start` leaves in the state dir so that status and stop can find it."""

    pid: int
    address: str
    ui_url: str
    namespace: str
    db_file: str
    log_file: str
    binary: str
    version: str


def load_dev_server_config(settings: Settings) -> DevServerConfig:
    path = settings.dev_server_file
    try:
        data = yaml.safe_load(path.read_text())
        config = DevServerConfig.model_validate(data)
    except FileNotFoundError as exc:
        raise ConfigError(f"dev-server settings not found: {path}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(
            f"{path}: invalid dev-server settings ({exc.__class__.__name__})"
        ) from exc
    # Ports can be moved without editing the file, e.g. to run two projects side by side.
    if port := os.environ.get("P2E_TEMPORAL_PORT"):
        config.port = int(port)
    if ui_port := os.environ.get("P2E_TEMPORAL_UI_PORT"):
        config.ui_port = int(ui_port)
    bad = {k: v for k, v in config.search_attributes.items() if v not in SEARCH_ATTRIBUTE_TYPES}
    if bad:
        raise ConfigError(f"{path}: unknown search attribute type(s) {bad}")
    return config


# --- provisioning ---------------------------------------------------------------------------


def cache_dir(config: DevServerConfig) -> Path:
    base = os.environ.get("P2E_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    if not os.environ.get("P2E_CACHE_DIR"):
        root = root / "p2engine"
    return root / f"temporal-{config.cli_version}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_temporal_binary(config: DevServerConfig, *, provision: bool = True) -> Path:
    explicit = os.environ.get("P2E_TEMPORAL_BIN")
    if explicit:
        if not _executable(Path(explicit)):
            raise ProvisioningError(f"P2E_TEMPORAL_BIN={explicit} is not an executable file")
        return Path(explicit)
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    cached = cache_dir(config) / "temporal"
    if _executable(cached):
        return cached
    if not provision:
        raise ProvisioningError(
            "Temporal CLI not found; run `p2e server provision` or set P2E_TEMPORAL_BIN"
        )
    downloaded = _sdk_download(config)
    if downloaded:
        return downloaded
    return _go_install(config)


def _sdk_download(config: DevServerConfig) -> Path | None:
    """The Temporal SDK's own download; needs the internet, so it fails fast when offline."""
    try:
        socket.getaddrinfo("temporal.download", 443)
    except OSError:
        _log("temporal.download is unreachable; building the CLI with `go install` instead")
        return None
    from temporalio.testing import WorkflowEnvironment

    dest = cache_dir(config) / "sdk-download"
    dest.mkdir(parents=True, exist_ok=True)

    async def fetch() -> None:
        env = await WorkflowEnvironment.start_local(
            download_dest_dir=str(dest), dev_server_download_version=f"v{config.cli_version}"
        )
        await env.shutdown()

    _log(f"downloading Temporal CLI v{config.cli_version} through the Temporal SDK ...")
    try:
        asyncio.run(asyncio.wait_for(fetch(), timeout=180))
    except Exception as exc:  # any failure falls through to the next provisioning step
        _log(f"SDK download failed ({exc.__class__.__name__}); trying `go install`")
        return None
    found = [p for p in dest.rglob("*") if _executable(p)]
    if not found:
        return None
    target = cache_dir(config) / "temporal"
    shutil.copy2(found[0], target)
    return target


def _go_version(go: str) -> tuple[int, int] | None:
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _go_install(config: DevServerConfig) -> Path:
    go = shutil.which("go")
    if not go:
        raise ProvisioningError(
            f"cannot provision the Temporal CLI: install Go >= {MIN_GO[0]}.{MIN_GO[1]} "
            f"(for `go install {config.go_package}@v{config.cli_version}`) "
            "or set P2E_TEMPORAL_BIN to a temporal binary"
        )
    version = _go_version(go)
    if version is None or version < MIN_GO:
        raise ProvisioningError(
            f"Go {MIN_GO[0]}.{MIN_GO[1]} or newer is needed to build the Temporal CLI "
            f"(found {'unknown' if version is None else '.'.join(map(str, version))}); "
            "upgrade Go or set P2E_TEMPORAL_BIN"
        )
    target_dir = cache_dir(config)
    target_dir.mkdir(parents=True, exist_ok=True)
    module = f"{config.go_package}@v{config.cli_version}"
    _log(f"building Temporal CLI with `go install {module}` (first run only, a few minutes) ...")
    env = {**os.environ, "GOBIN": str(target_dir), "GOFLAGS": "-mod=mod"}
    log_path = target_dir / "go-install.log"
    with log_path.open("w") as log:
        result = subprocess.run(
            [go, "install", module], env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    binary = target_dir / "temporal"
    if result.returncode != 0 or not _executable(binary):
        raise ProvisioningError(
            f"`go install {module}` failed (exit {result.returncode}); see {log_path}, "
            "or set P2E_TEMPORAL_BIN to a temporal binary"
        )
    return binary


def binary_version(binary: Path) -> str:
    """The CLI's version line; a `go install` build says 0.0.0-DEV, so ask Go's build info."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    version = out.removeprefix("temporal version ").strip() or "unknown"
    if version.startswith("0.0.0-DEV") and (go := shutil.which("go")):
        info = subprocess.run(
            [go, "version", "-m", str(binary)], capture_output=True, text=True, check=False
        ).stdout
        if match := re.search(r"mod\s+github.com/temporalio/cli\s+(v\S+)", info):
            version = version.replace("0.0.0-DEV", match.group(1), 1)
    return version


# --- lifecycle ------------------------------------------------------------------------------


def port_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class DevServer:
    """Start, stop and describe the dev server that belongs to one state dir."""

    def __init__(
        self, settings: Settings, *, port: int | None = None, ui_port: int | None = None
    ) -> None:
        self.settings = settings
        self.config = load_dev_server_config(settings)
        if port is not None:
            self.config.port = port
        if ui_port is not None:
            self.config.ui_port = ui_port
        self.state_dir = settings.state_dir.resolve()
        self.record_file = self.state_dir / "temporal.json"
        self.log_file = self.state_dir / "logs" / "temporal.log"
        self.db_file = self.state_dir / self.config.db_file

    def record(self) -> ServerRecord | None:
        """The running server's record, or None (a stale record is removed)."""
        try:
            record = ServerRecord.model_validate_json(self.record_file.read_text())
        except (FileNotFoundError, ValidationError):
            return None
        if not _pid_alive(record.pid):
            self.record_file.unlink(missing_ok=True)
            return None
        return record

    def command(self, binary: Path) -> list[str]:
        cfg = self.config
        cmd = [
            str(binary), "server", "start-dev",
            "--ip", cfg.ip, "--port", str(cfg.port), "--ui-port", str(cfg.ui_port),
            "--db-filename", str(self.db_file), "--namespace", cfg.namespace,
            "--log-level", cfg.log_level,
        ]  # fmt: skip
        for pragma, setting in cfg.sqlite_pragmas.items():
            cmd += ["--sqlite-pragma", f"{pragma}={setting}"]
        for name, kind in cfg.search_attributes.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        for key, value in cfg.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        return cmd

    def start(self) -> tuple[ServerRecord, bool]:
        """Start the server unless it runs; returns the record and whether it was started now."""
        existing = self.record()
        if existing:
            return existing, False
        cfg = self.config
        if port_open(cfg.ip, cfg.port):
            raise DevServerError(
                f"port {cfg.address} is taken by a process p2e did not start; stop it, "
                "set TEMPORAL_ADDRESS to use it, or set P2E_TEMPORAL_PORT to another port"
            )
        binary = find_temporal_binary(cfg)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                self.command(binary),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        record = ServerRecord(
            pid=process.pid,
            address=cfg.address,
            ui_url=cfg.ui_url,
            namespace=cfg.namespace,
            db_file=str(self.db_file),
            log_file=str(self.log_file),
            binary=str(binary),
            version=binary_version(binary),
        )
        deadline = time.monotonic() + cfg.startup_timeout_s
        while not (port_open(cfg.ip, cfg.port) and port_open(cfg.ip, cfg.ui_port)):
            if process.poll() is not None:
                raise DevServerError(
                    f"Temporal dev server exited with code {process.returncode}; "
                    f"see {self.log_file}"
                )
            if time.monotonic() > deadline:
                process.kill()
                raise DevServerError(
                    f"Temporal dev server did not open {cfg.address} within "
                    f"{cfg.startup_timeout_s:.0f}s; see {self.log_file}"
                )
            time.sleep(0.1)
        self.record_file.write_text(record.model_dump_json(indent=2))
        return record, True

    def stop(self, timeout: float = 15.0) -> ServerRecord | None:
        record = self.record()
        if record is None:
            return None
        os.killpg(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(record.pid):
            os.killpg(record.pid, signal.SIGKILL)
        self.record_file.unlink(missing_ok=True)
        return record


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_dev_server(state_dir: Path) -> Iterator[DevServer]:
    """A throwaway dev server on free ports, for tests and benchmarks; stopped on exit."""
    server = DevServer(Settings(state_dir=state_dir), port=free_port(), ui_port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
