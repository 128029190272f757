"""`p2e db` as a user runs it, and a database URL that cannot serve, on every path a
command reads the store by."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_cli import p2e


@pytest.fixture()
def db_env(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A state dir of its own, one the server's system user may traverse (as root)."""
    root = Path(tempfile.mkdtemp(prefix="p2e-db-"))
    root.chmod(0o755)
    env = {**cli_env, "P2E_STATE_DIR": str(root)}
    try:
        yield env
    finally:
        p2e("db", "stop", env=env)
        shutil.rmtree(root, ignore_errors=True)


def test_start_prints_the_url_last_status_shows_it_and_stop_stops(
    db_env: dict[str, str],
) -> None:
    stopped = p2e("db", "status", env=db_env)
    assert stopped.returncode == 1 and "running   no" in stopped.stdout

    started = p2e("db", "start", env=db_env)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert f"export P2E_DATABASE_URL={url}" in started.stderr
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)

    again = p2e("db", "start", env=db_env)
    assert again.stdout.strip().splitlines()[-1] == url and "already running" in again.stderr
    status = json.loads(p2e("db", "status", "--json", env=db_env).stdout)
    assert (status["running"], status["url"]) == (True, url)

    assert p2e("db", "stop", env=db_env).returncode == 0
    assert json.loads(p2e("db", "status", "--json", env=db_env).stdout)["running"] is False
    # Started again, on the same port: the URL workers were given still works.
    assert p2e("db", "start", env=db_env).stdout.strip().splitlines()[-1] == url


def test_content_written_through_the_database_reads_back_from_another_state_dir(
    db_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    shared = {**db_env, "P2E_DATABASE_URL": database_url}
    done = p2e("run", "--id", "db-shared", "weather in Paris?", env=shared)
    assert done.returncode == 0, done.stderr
    elsewhere = {**shared, "P2E_STATE_DIR": str(tmp_path)}  # another machine's disk
    shown = p2e("artifact", "show", "db-shared", "--json", env=elsewhere)
    assert shown.returncode == 0, shown.stderr
    texts = [row["content"].get("text") for row in json.loads(shown.stdout)
             if isinstance(row["content"], dict)]  # fmt: skip
    assert "weather in Paris?" in texts and any("15°C" in (t or "") for t in texts)
    # A branch started there reads the source's state from the database, as does `eval show`.
    branched = p2e("conversation", "branch", "db-shared", "--at", "3", "-m", "And in Rome?",
                   env=elsewhere)  # fmt: skip
    assert branched.returncode == 0, branched.stderr
    shown = p2e("conversation", "show", "db-shared~b1", "--json", env=shared)
    stack = json.loads(shown.stdout)["stack"]
    assert stack[-1]["kind"] == "Finished" and stack[-1]["reason"] == "done", stack[-1]
    assert any("Rome" in e["preview"] for e in stack)
    assert p2e("eval", "show", "db-shared", env=elsewhere).returncode == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@y/z", "a database URL starts postgresql://"),
        ("postgresql://postgres@127.0.0.1:1/p2e", "postgresql://postgres@127.0.0.1:1/p2e:"),
    ],
)
@pytest.mark.parametrize(
    "args", [["artifact", "cat", "abcdef12"], ["eval", "show", "conv-nope"], ["run", "hi"]]
)
def test_a_database_url_that_cannot_serve_is_one_line_and_exit_2(
    db_env: dict[str, str], url: str, message: str, args: list[str]
) -> None:
    done = p2e(*args, env={**db_env, "P2E_DATABASE_URL": url}, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], done.stderr
    assert "Traceback" not in done.stderr


def test_the_ledger_in_the_database_is_one_ledger_for_every_machine(
    db_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    here = {**db_env, "P2E_DATABASE_URL": database_url}
    there = {**here, "P2E_STATE_DIR": str(tmp_path)}
    assert p2e("ledger", "init", env=here).returncode == 0
    moved = p2e("ledger", "transfer", "agent_alpha", "agent_beta", "2.50", "--id", "db-1",
                env=here)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    again = p2e("ledger", "transfer", "agent_alpha", "agent_beta", "2.50", "--id", "db-1",
                env=there)  # fmt: skip
    assert again.returncode == 0 and "nothing moved" in again.stdout + again.stderr
    balance = p2e("ledger", "balance", "agent_beta", "--json", env=there)
    assert json.loads(balance.stdout)["balance"] == "102.50"
    history = json.loads(p2e("ledger", "history", "agent_alpha", "--json", env=there).stdout)
    assert [row["amount"] for row in history] == ["2.50"]
    verified = p2e("ledger", "verify", env=there)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not (tmp_path / "ledger.db").exists() and not (tmp_path / "artifacts").exists()
