"""Settings: defaults < config/p2e.yaml < P2E_* environment < command-line flags.

The settings file is `$P2E_CONFIG` if set, else `config/p2e.yaml` in the working directory,
else the one shipped in the project. Relative paths in it resolve against the working
directory, so every project checkout keeps its own state dir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from p2engine.agents.config import ScriptedModelSettings, ToolSettings
from p2engine.contract.agent import DEFAULT_MODEL
from p2engine.contract.errors import ConfigError, first_problem, read_config_text
from p2engine.contract.evals import RewardPolicy
from p2engine.contract.mcp import McpServer
from p2engine.contract.routing import Routing
from p2engine.ledger.config import LedgerSettings

if TYPE_CHECKING:
    from p2engine.ledger.base import Ledger

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Temporal's rule for namespace names.
NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemporalSettings(_Section):
    address: str | None = Field(
        default=None, description="host:port of an existing service; None runs the dev server"
    )
    namespace: str = Field(default="default", pattern=NAMESPACE_PATTERN, max_length=255)
    task_queue: str = Field(default="p2e", min_length=1, max_length=255, pattern=r"^\S+$")
    ui_url: str | None = Field(
        default=None, description="Web UI of an existing service, for the links p2e prints"
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    tls: bool | None = Field(default=None, description="None: on with an API key or a cert")
    tls_cert: Path | None = Field(default=None, description="mTLS client certificate (PEM)")
    tls_key: Path | None = Field(default=None, description="mTLS client private key (PEM)")

    @property
    def uses_tls(self) -> bool:
        if self.tls is not None:
            return self.tls
        return self.api_key is not None or self.tls_cert is not None

    @model_validator(mode="after")
    def _cert_with_key(self) -> TemporalSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together (mTLS needs both)")
        return self

    @field_validator("address")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            check_address(value)
        return value

    @field_validator("ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value


def check_address(value: str) -> None:
    """`host:port` with a port in 1..65535, or ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError(f"must be host:port, not {value!r}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1..65535, not {port}")
    if any(c.isspace() or not c.isprintable() for c in host):
        raise ValueError(f"host must have no spaces or control characters, not {host!r}")


class ConversationSettings(_Section):
    continue_as_new_events: int | None = Field(
        default=None,
        ge=50,
        description="continue-as-new after this many history events; None: when Temporal says",
    )


class TelemetrySettings(_Section):
    exporter: Literal["none", "console", "otlp", "file"] = Field(
        default="none",
        description="where spans go; none creates no span at all",
    )
    capture_content: bool = Field(
        default=False, description="put message and tool content on spans (it may be private)"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL; None: OTEL_EXPORTER_OTLP_ENDPOINT or localhost:4318",
    )

    @property
    def on(self) -> bool:
        return self.exporter != "none"


class Settings(_Section):
    """Everything configurable, merged by `load_settings` from the settings file, P2E_*
    environment variables and overrides (README.md -> Settings names every key)."""

    state_dir: Path = Path(".p2e")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL for the store, the tool cache and the ledger; unset: state_dir",
    )
    agents_file: Path = PROJECT_ROOT / "config" / "agents.yml"
    dev_server_file: Path = PROJECT_ROOT / "deploy" / "temporal-dev.yaml"
    personas_dir: Path = PROJECT_ROOT / "config" / "personas"
    evals_file: Path = PROJECT_ROOT / "config" / "evals.yml"
    default_model: str = DEFAULT_MODEL
    temporal: TemporalSettings = TemporalSettings()
    scripted: ScriptedModelSettings = ScriptedModelSettings()
    tools: ToolSettings = ToolSettings()
    conversation: ConversationSettings = ConversationSettings()
    ledger: LedgerSettings = LedgerSettings()
    routing: Routing = Routing()
    rewards: RewardPolicy | None = None
    telemetry: TelemetrySettings = TelemetrySettings()
    mcp_servers: dict[str, McpServer] = Field(
        default={}, description="MCP servers by name: a stdio command or a streamable HTTP url"
    )

    @field_validator("database_url")
    @classmethod
    def _a_postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("a database URL starts postgresql:// (postgresql://user@host/db)")
        return value

    @field_validator("state_dir")
    @classmethod
    def _a_directory(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a directory")
        return value

    @property
    def embedded(self) -> bool:
        return self.temporal.address is None

    @property
    def traces_file(self) -> Path:
        """Where the `file` exporter appends spans, one JSON object per line."""
        return self.state_dir / "traces.jsonl"


# Environment variable -> dotted settings key. TEMPORAL_* are the names Temporal's own tools use.
ENV_VARS: dict[str, str] = {
    "P2E_STATE_DIR": "state_dir",
    "P2E_DATABASE_URL": "database_url",
    "P2E_AGENTS_FILE": "agents_file",
    "P2E_DEV_SERVER_FILE": "dev_server_file",
    "P2E_PERSONAS_DIR": "personas_dir",
    "P2E_EVALS_FILE": "evals_file",
    "P2E_DEDUP": "tools.dedup",
    "P2E_CONTINUE_AS_NEW_EVENTS": "conversation.continue_as_new_events",
    "P2E_MODEL": "default_model",
    "TEMPORAL_ADDRESS": "temporal.address",
    "P2E_TEMPORAL_ADDRESS": "temporal.address",
    "TEMPORAL_NAMESPACE": "temporal.namespace",
    "P2E_NAMESPACE": "temporal.namespace",
    "P2E_TASK_QUEUE": "temporal.task_queue",
    "P2E_MODEL_QUEUE": "routing.models",
    "P2E_TOOL_QUEUE": "routing.tools",
    "P2E_TEMPORAL_UI_URL": "temporal.ui_url",
    "TEMPORAL_API_KEY": "temporal.api_key",
    "TEMPORAL_TLS": "temporal.tls",
    "TEMPORAL_TLS_CLIENT_CERT_PATH": "temporal.tls_cert",
    "TEMPORAL_TLS_CLIENT_KEY_PATH": "temporal.tls_key",
    "P2E_SCRIPTED_LATENCY_MS": "scripted.latency_ms",
    "P2E_SCRIPTED_PROMPT_TOKENS": "scripted.prompt_tokens",
    "P2E_SCRIPTED_COMPLETION_TOKENS": "scripted.completion_tokens",
    "P2E_SCRIPTED_COST_PER_1K": "scripted.cost_per_1k_tokens",
    "P2E_LEDGER": "ledger.backend",
    "P2E_LEDGER_MAX_TRANSFER": "ledger.max_transfer",
    "P2E_CANTON_URL": "ledger.canton.url",
    "P2E_CANTON_TOKEN": "ledger.canton.token",
    "P2E_CANTON_SECRET": "ledger.canton.hmac_secret",
    "P2E_OTEL_EXPORTER": "telemetry.exporter",
    "P2E_OTEL_CAPTURE_CONTENT": "telemetry.capture_content",
    "P2E_OTEL_ENDPOINT": "telemetry.otlp_endpoint",
}


# Dotted keys that command-line flags set, for errors that name the flag.
FLAGS: dict[str, str] = {"temporal.address": "--address", "temporal.namespace": "--namespace"}


def settings_file() -> Path:
    explicit = os.environ.get("P2E_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("config") / "p2e.yaml"
    return local if local.is_file() else PROJECT_ROOT / "config" / "p2e.yaml"


def _set_dotted(target: dict[str, Any], dotted: str, value: Any, source: Path) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        if target.get(part) is None:  # absent, or a section whose keys are all commented out
            target[part] = {}
        if not isinstance(target[part], dict):
            raise ConfigError(f"{source}: setting '{part}' must be a mapping")
        target = target[part]
    target[leaf] = value


def _read_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"P2E_CONFIG names {path}, a directory, not a settings file")
    if not path.exists():
        if "P2E_CONFIG" in os.environ:
            raise ConfigError(f"P2E_CONFIG names {path}, which does not exist")
        return {}
    try:
        loaded = yaml.safe_load(read_config_text(path, "settings file")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return {key: value for key, value in loaded.items() if value is not None}


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Merge the layers; `overrides` holds command-line flags as dotted keys (None = unset)."""
    path = settings_file()
    data = _read_file(path)
    given_by: dict[str, str] = {}  # dotted key -> the variable or flag that set it
    # Later layers win; an empty environment variable counts as unset.
    for env_name, dotted in ENV_VARS.items():
        value = os.environ.get(env_name)
        if value:
            _set_dotted(data, dotted, value, path)
            given_by[dotted] = env_name
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value, path)
            given_by[dotted] = FLAGS.get(dotted, dotted)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        dotted = ".".join(str(part) for part in first["loc"])
        source = given_by.get(dotted, str(path))
        raise ConfigError(f"{source}: setting {first_problem(exc)}") from exc


def ledger_for(settings: Settings, create: bool = False) -> Ledger:
    """The ledger these settings choose (ledger/__init__.py's open_ledger): Canton when
    configured, else the database of `database_url`, else the state dir's file."""
    from p2engine.ledger import open_ledger

    return open_ledger(settings.ledger, settings.state_dir, create, settings.database_url)
