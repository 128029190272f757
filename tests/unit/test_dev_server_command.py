"""The dev server's command line carries deploy/temporal-dev.yaml: pragmas, search
attributes and the dynamic config that keeps task dispatch fast on one machine."""

from __future__ import annotations

from pathlib import Path

from runtime.settings import Settings
from runtime.temporal_server import DevServer


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
