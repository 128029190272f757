"""Tools from MCP servers no one here wrote, as a user configures and runs them: the time
server (PyPI, stdio) and the everything server (npm, stdio and streamable HTTP), called by
scripted-model conversations whose listings and calls are activities; a worker killed
mid-call; a server that is unreachable, hangs or speaks garbage; bad configuration."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from p2engine.runtime.settings import PROJECT_ROOT
from tests.integration.test_cli import P2E, p2e

BIN = Path(sys.executable).parent
EVERYTHING = BIN.parent / "node" / "node_modules" / ".bin" / "mcp-server-everything"
TIME_NOW = 'call time__get_current_time with {"timezone": "UTC"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def everything_http() -> Iterator[str]:
    """The everything server over streamable HTTP, on a free port."""
    assert EVERYTHING.exists(), "make mcp-servers installs the everything server from npm"
    port = free_port()
    server = subprocess.Popen(
        [str(EVERYTHING), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=10)


def servers(everything_url: str) -> dict[str, Any]:
    garbage = "import sys, time\nprint('not the protocol', flush=True)\ntime.sleep(60)"
    return {
        "time": {"command": str(BIN / "mcp-server-time")},
        "everything": {"command": str(EVERYTHING), "args": ["stdio"], "timeout_s": 3,
                       "max_attempts": 1},
        "retried": {"command": str(EVERYTHING), "args": ["stdio"], "timeout_s": 5},
        "everything_http": {"url": everything_url, "side_effects": ["echo"],
                            "headers": {"X-Probe": "P2E_TEST_PROBE"}},
        "garbage": {"command": sys.executable, "args": ["-c", garbage], "timeout_s": 2,
                    "max_attempts": 1},
        "gone": {"url": f"http://127.0.0.1:{free_port()}/mcp", "timeout_s": 2, "max_attempts": 1},
    }  # fmt: skip


AGENTS = {
    "clock": ["time"],
    "echoer": ["everything.echo", "everything.trigger-long-running-operation"],
    "web": ["everything_http.echo"],
    "patient": ["retried.trigger-long-running-operation"],
    "babbler": ["garbage"],
    "lost": ["gone"],
}


def write_config(
    directory: Path, everything_url: str, extra: dict[str, Any] | None = None
) -> dict[str, str]:
    """A settings file with the servers and an agents file with agents that use them: the
    environment a `p2e` process reads them by."""
    settings = {"mcp_servers": servers(everything_url)}
    (directory / "p2e.yaml").write_text(yaml.safe_dump(settings))
    team = yaml.safe_load((PROJECT_ROOT / "config" / "agents.yml").read_text())
    team["agents"] += [{"id": a, "mcp": chosen} for a, chosen in AGENTS.items()]
    team["agents"] += (extra or {}).get("agents", [])
    (directory / "agents.yml").write_text(yaml.safe_dump(team))
    return {
        "P2E_CONFIG": str(directory / "p2e.yaml"),
        "P2E_AGENTS_FILE": str(directory / "agents.yml"),
        "P2E_TEST_PROBE": "probe",
    }


@pytest.fixture()
def mcp_env(cli_env: dict[str, str], tmp_path: Path, everything_http: str) -> dict[str, str]:
    return {**cli_env, **write_config(tmp_path, everything_http)}


def run(
    env: dict[str, str], agent: str, message: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    name = f"mcp-{uuid.uuid4().hex[:8]}"
    done = p2e("run", "-a", agent, "--id", name, message, env=env, timeout=180)
    shown = p2e("conversation", "show", f"conv-{name}", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return done, json.loads(shown.stdout)


def results(shown: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in shown["stack"] if e["kind"] == "ToolResult"]


async def activities(env: dict[str, str], workflow_id: str) -> list[tuple[str, str]]:
    """(activity type, summary) of each activity the conversation scheduled."""
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            kind = event.activity_task_scheduled_event_attributes.activity_type.name
            summary = (
                json.loads(event.user_metadata.summary.data)
                if event.HasField("user_metadata")
                else ""
            )
            found.append((kind, summary))
    return found


def test_a_time_server_tool_is_listed_and_called_as_activities(mcp_env: dict[str, str]) -> None:
    done, shown = run(mcp_env, "clock", TIME_NOW)
    assert done.returncode == 0, done.stderr
    [result] = results(shown)
    assert result["status"] == "ok" and '"timezone": "UTC"' in result["preview"]
    assert shown["stack"][1]["tool_name"] == "time.get_current_time"
    scheduled = asyncio.run(activities(mcp_env, shown["conversation_id"]))
    assert ("mcp_list_tools", "time: list tools") in scheduled
    assert ("mcp_call_tool", 'time.get_current_time({"timezone": "UTC"})') in scheduled


@pytest.mark.parametrize("agent", ["echoer", "web"])  # stdio, then streamable HTTP
def test_the_everything_server_echoes_over_both_transports(
    mcp_env: dict[str, str], agent: str
) -> None:
    wire = "everything__echo" if agent == "echoer" else "everything_http__echo"
    done, shown = run(mcp_env, agent, f'call {wire} with {{"message": "hello from p2e"}}')
    assert done.returncode == 0, done.stderr
    [result] = results(shown)
    assert result["status"] == "ok" and "hello from p2e" in result["preview"]


def test_a_model_s_bad_arguments_are_a_tool_error_it_reads(mcp_env: dict[str, str]) -> None:
    done, shown = run(mcp_env, "clock", 'call time__get_current_time with {"timezone": 5}')
    assert done.returncode == 0, done.stderr
    first = results(shown)[0]
    assert first["status"] == "error"
    assert "invalid arguments: timezone: 5 is not of type 'string'" in first["preview"]
    assert shown["stack"][-1]["reason"] == "done"  # the conversation went on


def test_a_tool_error_of_the_server_is_recorded_and_the_conversation_goes_on(
    mcp_env: dict[str, str],
) -> None:
    done, shown = run(
        mcp_env, "clock", 'call time__get_current_time with {"timezone": "Nowhere/X"}'
    )
    assert done.returncode == 0, done.stderr
    [result] = results(shown)
    assert result["status"] == "error" and "Invalid timezone" in result["preview"]


def test_a_server_that_hangs_times_out_into_the_stack(mcp_env: dict[str, str]) -> None:
    slow = 'call everything__trigger-long-running-operation with {"duration": 30, "steps": 1}'
    done, shown = run(mcp_env, "echoer", slow)
    assert done.returncode == 0, done.stderr
    [result] = results(shown)
    assert result["status"] in ("error", "timeout")
    assert "MCP server 'everything': no answer within 3 s" in result["preview"]


@pytest.mark.parametrize(
    ("agent", "problem"),
    [("lost", "MCP server 'gone': "), ("babbler", "MCP server 'garbage': no answer within 2 s")],
)
def test_a_server_unreachable_or_speaking_garbage_ends_the_conversation_saying_why(
    mcp_env: dict[str, str], agent: str, problem: str
) -> None:
    _, shown = run(mcp_env, agent, "what time is it?")
    finished = shown["stack"][-1]
    assert finished["kind"] == "Finished" and finished["reason"] == "error"
    assert "MCP tools could not be listed" in finished["preview"] and problem in finished["preview"]


def test_tools_list_shows_built_in_and_mcp_tools_with_schemas(mcp_env: dict[str, str]) -> None:
    listed = p2e("tools", "list", "--server", "time", "--json", env=mcp_env)
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert set(tools) == {"time.get_current_time", "time.convert_time"}
    assert tools["time.get_current_time"]["schema"]["required"] == ["timezone"]
    everything = p2e("tools", "list", env={**mcp_env, "COLUMNS": "80"})
    assert "get_weather" in everything.stdout and "everything.echo" in everything.stdout
    assert everything.returncode == 1  # two servers are down, and it says which
    assert "not listed: MCP server 'gone'" in everything.stdout
    unknown = p2e("tools", "list", "--server", "nope", env=mcp_env)
    assert (unknown.returncode, unknown.stderr.count("\n")) == (2, 1)
    assert unknown.stderr.startswith("error: unknown MCP server 'nope'; servers:")


@pytest.mark.parametrize(
    ("agents", "problem"),
    [
        ([{"id": "stray", "mcp": ["nowhere"]}], "names unknown MCP server 'nowhere'"),
        ([{"id": "odd", "mcp": ["own"], "mcp_servers": {"own": {"command": "no-such-mcp"}}}],
         "MCP server 'own': no such command 'no-such-mcp'"),
    ],
)  # fmt: skip
def test_bad_mcp_configuration_is_one_line_and_exit_2(
    cli_env: dict[str, str], tmp_path: Path, agents: list[dict[str, Any]], problem: str
) -> None:
    env = {**cli_env, **write_config(tmp_path, "http://127.0.0.1:9/mcp", {"agents": agents})}
    done = p2e("run", "-a", agents[0]["id"], "hello", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert problem in done.stderr


def test_a_worker_killed_mid_call_leaves_the_conversation_to_finish(
    mcp_env: dict[str, str],
) -> None:
    doomed = subprocess.Popen([P2E, "worker"], env=mcp_env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    name = f"mcp-kill-{uuid.uuid4().hex[:6]}"
    slow = 'call retried__trigger-long-running-operation with {"duration": 2, "steps": 2}'
    try:
        assert doomed.stdout is not None and "worker ready" in doomed.stdout.readline()
        started = p2e("run", "-a", "patient", "--id", name, "--detach", slow, env=mcp_env)
        assert started.returncode == 0, started.stderr
        assert asyncio.run(call_running(mcp_env, f"conv-{name}")), "the call never started"
    finally:
        doomed.kill()
        doomed.wait(timeout=30)
    replacement = subprocess.Popen([P2E, "worker"], env=mcp_env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(120):
            showing = p2e("conversation", "show", f"conv-{name}", "--json", env=mcp_env)
            shown = json.loads(showing.stdout) if showing.returncode == 0 else {"stack": [{}]}
            if shown["stack"][-1].get("kind") == "Finished":  # until the replacement answers
                break
            time.sleep(1)
    finally:
        replacement.terminate()
        replacement.wait(timeout=60)
    assert shown["stack"][-1]["reason"] == "done"
    [result] = results(shown)
    assert result["status"] == "ok" and "Long running operation completed" in result["preview"]


async def call_running(env: dict[str, str], workflow_id: str) -> bool:
    """Wait until the conversation's MCP call is running on a worker."""
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(300):
        try:
            pending = list((await handle.describe()).raw_description.pending_activities)
        except RPCError:  # not started yet
            pending = []
        if any(p.activity_type.name == "mcp_call_tool" and p.HasField("last_started_time")
               for p in pending):  # fmt: skip
            return True
        await asyncio.sleep(0.05)
    return False
