"""Settings layering: defaults < yaml file < environment < overrides (runtime/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.contract.errors import ConfigError
from p2engine.runtime.settings import ENV_VARS, PROJECT_ROOT, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*ENV_VARS, "P2E_CONFIG", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    monkeypatch.setenv("P2E_CONFIG", str(path))
    return path


def test_empty_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, "")
    settings = load_settings()
    assert settings == Settings()
    assert settings.temporal.address is None
    assert settings.embedded
    assert settings.temporal.task_queue == "p2e"
    assert settings.temporal.namespace == "default"
    assert settings.state_dir == Path(".p2e") and settings.database_url is None


def test_shipped_config_is_used_without_a_local_one() -> None:
    settings = load_settings()
    assert settings.default_model == "scripted/default"
    assert settings.agents_file == PROJECT_ROOT / "config" / "agents.yml"


def test_local_config_in_working_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "p2e.yaml").write_text("temporal:\n  task_queue: local-queue\n")
    assert load_settings().temporal.task_queue == "local-queue"


def test_yaml_overrides_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        tmp_path,
        monkeypatch,
        "default_model: openai/gpt-4o-mini\ntemporal:\n  task_queue: from-yaml\n",
    )
    settings = load_settings()
    assert settings.default_model == "openai/gpt-4o-mini"
    assert settings.temporal.task_queue == "from-yaml"
    assert settings.temporal.namespace == "default"


def test_env_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        tmp_path,
        monkeypatch,
        "temporal:\n  task_queue: from-yaml\n  address: yaml:7233\n",
    )
    monkeypatch.setenv("P2E_TASK_QUEUE", "from-env")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "env:7233")
    settings = load_settings()
    assert settings.temporal.task_queue == "from-env"
    assert settings.temporal.address == "env:7233"
    assert not settings.embedded


def test_overrides_beat_env_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, "temporal:\n  address: yaml:7233\n")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "env:7233")
    settings = load_settings({"temporal.address": "x:1"})
    assert settings.temporal.address == "x:1"


def test_none_override_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, "temporal:\n  task_queue: from-yaml\n")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "env:7233")
    settings = load_settings({"temporal.address": None, "temporal.task_queue": None})
    assert settings.temporal.address == "env:7233"
    assert settings.temporal.task_queue == "from-yaml"


def test_empty_env_var_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, "temporal:\n  task_queue: from-yaml\n")
    monkeypatch.setenv("P2E_TASK_QUEUE", "")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "")
    settings = load_settings()
    assert settings.temporal.task_queue == "from-yaml"
    assert settings.temporal.address is None


def test_env_values_are_validated_into_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2E_SCRIPTED_LATENCY_MS", "25")
    monkeypatch.setenv("P2E_STATE_DIR", "/tmp/p2e-state")
    settings = load_settings()
    assert settings.scripted.latency_ms == 25
    assert settings.state_dir == Path("/tmp/p2e-state")


def test_unknown_top_level_key_raises_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, monkeypatch, "colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings()


def test_unknown_nested_key_raises_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, monkeypatch, "temporal:\n  adress: x:1\n")
    with pytest.raises(ConfigError, match=r"temporal\.adress"):
        load_settings()


def test_malformed_yaml_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, monkeypatch, "temporal: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_settings()
    assert str(path) in str(info.value)


def test_non_mapping_yaml_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, "- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings()


def test_missing_p2e_config_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv("P2E_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_settings()
    assert str(missing) in str(info.value)


def test_invalid_env_value_raises_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2E_SCRIPTED_LATENCY_MS", "-5")
    with pytest.raises(ConfigError, match=r"scripted\.latency_ms"):
        load_settings()


def test_a_section_with_every_key_commented_out_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A section whose keys are all commented out parses as None, not as a mapping.
    write_config(tmp_path, monkeypatch, "temporal:\n  # address: x:1\n")
    assert load_settings().temporal.task_queue == "p2e"
    monkeypatch.setenv("TEMPORAL_ADDRESS", "env:7233")
    assert load_settings().temporal.address == "env:7233"


def test_env_on_top_of_a_scalar_section_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, monkeypatch, "temporal: 5\n")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "env:7233")
    with pytest.raises(ConfigError, match="'temporal' must be a mapping"):
        load_settings()


def test_temporal_cloud_takes_an_api_key_and_tls_from_the_variables_its_tools_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from p2engine.runtime.client import tls_config

    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    settings = load_settings()
    assert settings.temporal.api_key is not None
    assert settings.temporal.api_key.get_secret_value() == "secret-key"
    assert "secret-key" not in repr(settings) and "secret-key" not in settings.model_dump_json()
    assert tls_config(settings) is True
    monkeypatch.setenv("TEMPORAL_TLS", "false")  # a proxy that terminates TLS
    assert tls_config(load_settings()) is False


def test_mtls_reads_the_certificate_and_key_and_names_a_file_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from temporalio.service import TLSConfig

    from p2engine.contract.errors import ConfigError
    from p2engine.runtime.client import tls_config

    (tmp_path / "client.pem").write_bytes(b"CERT")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    with pytest.raises(ConfigError, match="give tls_cert and tls_key together"):
        load_settings()
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    with pytest.raises(ConfigError, match=r"cannot read .*client\.key: No such file"):
        tls_config(load_settings())
    (tmp_path / "client.key").write_bytes(b"KEY")
    config = tls_config(load_settings())
    assert isinstance(config, TLSConfig)
    assert (config.client_cert, config.client_private_key) == (b"CERT", b"KEY")
