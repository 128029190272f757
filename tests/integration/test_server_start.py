"""`p2e server start` from several terminals at once: one server, one pid record naming it, and
every other start says it already runs; bad settings are one line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import pytest

from p2engine.runtime.temporal_server import free_port, pid_alive, port_open

P2E = str(Path(sys.executable).parent / "p2e")
STARTS = 8


def p2e(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [P2E, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def private_env(state_dir: Path) -> dict[str, str]:
    """The user's environment without P2E_/TEMPORAL_ settings, on a state dir and ports of its
    own, so that no other server or test can be found or disturbed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("P2E_", "TEMPORAL_"))}
    env.update(
        {
            "P2E_STATE_DIR": str(state_dir),
            "P2E_TEMPORAL_PORT": str(free_port()),
            "P2E_TEMPORAL_UI_PORT": str(free_port()),
            "COLUMNS": "250",
        }
    )
    return env


def dev_servers_on(port: int) -> list[int]:
    """Pids of every `temporal server start-dev` on this port, whoever started it."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if b"start-dev" in args and f"--port\0{port}\0".encode() in b"\0".join(args):
                found.append(int(cmdline.parent.name))
    return found


def kill_groups(pids: list[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="counts servers via /proc")
def test_concurrent_starts_leave_one_server_that_stop_stops(tmp_path: Path) -> None:
    env = private_env(tmp_path / "state")
    port = int(env["P2E_TEMPORAL_PORT"])
    record_file = tmp_path / "state" / "temporal.json"
    try:
        with ThreadPoolExecutor(STARTS) as pool:
            starts = list(pool.map(lambda _: p2e("server", "start", env=env), range(STARTS)))

        assert [done.returncode for done in starts] == [0] * STARTS, [d.stderr for d in starts]
        said = sorted(done.stderr.strip() for done in starts)
        assert said == ["already running"] * (STARTS - 1) + ["started"]
        pid = json.loads(record_file.read_text())["pid"]
        assert dev_servers_on(port) == [pid]
        assert pid_alive(pid)
        assert port_open("127.0.0.1", port)

        status = p2e("server", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert f"yes (pid {pid})" in status.stdout

        stopped = p2e("server", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the dev server (pid {pid})" in stopped.stdout
        assert dev_servers_on(port) == []
        assert not port_open("127.0.0.1", port)
        assert not record_file.exists()

        again = p2e("server", "stop", env=env)
        assert again.returncode == 2
        assert again.stderr.strip() == "error: the dev server is not running"

        # A command that needs the server starts it again, and says so.
        listed = p2e("conversation", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        assert f"started the Temporal dev server at 127.0.0.1:{port}" in listed.stderr
        assert "`p2e server stop` stops it" in listed.stderr
        quiet = p2e("conversation", "list", env=env)
        assert "started the Temporal dev server" not in quiet.stderr  # once, not every time
    finally:
        kill_groups(dev_servers_on(port))


def test_a_port_variable_that_is_no_port_is_one_line(tmp_path: Path) -> None:
    env = private_env(tmp_path / "state")
    env["P2E_TEMPORAL_UI_PORT"] = "abc"

    done = p2e("server", "start", env=env)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: P2E_TEMPORAL_UI_PORT must be a port number 1..65535, not 'abc'"
    ]


@pytest.mark.parametrize("below", ["", "sub"])
@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_a_state_dir_that_is_a_file_is_one_line(tmp_path: Path, command: str, below: str) -> None:
    file = tmp_path / "state"
    file.write_text("not a directory\n")
    state_dir = file / below if below else file

    done = p2e("server", command, env=private_env(state_dir))

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert str(state_dir) in line
    assert "not a directory" in line
    assert file.read_text() == "not a directory\n"
