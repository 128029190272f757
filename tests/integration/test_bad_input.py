"""Bad input, as a careless or hostile user types it: every case is one line on stderr, exit 2,
no traceback, and nothing written (the ledger's content and the number of workflows are the
same before and after). Grow this corpus whenever a new way to get it wrong turns up."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.integration.test_ledger_cli import own_ledger

__all__ = ["own_ledger"]  # the fixture: the session's Temporal, a state dir with a ledger

P2E = str(Path(sys.executable).parent / "p2e")
NOT_UTF8 = b"agents:\n  - id: caf\xe9\n"


def p2e(
    *args: str | bytes, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [P2E, *args], env=env, input=stdin, capture_output=True, timeout=120, check=False
    )


def ledger_digest(state_dir: Path) -> str:
    """The ledger's logical content (every row of every table), whatever SQLite's files do."""
    db = sqlite3.connect(state_dir / "ledger.db")
    try:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    finally:
        db.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "not-utf8.yml").write_bytes(NOT_UTF8)
    (root / "a-file").write_text("not a directory\n")
    (root / "timeout.yaml").write_text("temporal:\n  connect_timeout_s: -1\n")
    (root / "a-dir").mkdir()
    yield {path.name: path for path in root.iterdir()}


BIG = "x" * (600 * 1024)

# (case id, argv, extra environment, a fragment the one line must contain)
CASES: list[tuple[str, list[str | bytes], dict[str, str], str]] = [
    # amounts
    ("amount-underscore", ["ledger", "transfer", "agent_alpha", "agent_beta", "1_0"], {}, "amount"),
    (
        "amount-arabic",
        ["ledger", "transfer", "agent_alpha", "agent_beta", "\u0661\u0660"],
        {},
        "amount",
    ),
    (
        "amount-fullwidth",
        ["ledger", "transfer", "agent_alpha", "agent_beta", "\uff15"],
        {},
        "amount",
    ),
    ("amount-exponent", ["ledger", "transfer", "agent_alpha", "agent_beta", "1e1"], {}, "amount"),
    ("amount-nan", ["ledger", "transfer", "agent_alpha", "agent_beta", "nan"], {}, "amount"),
    ("balance-huge", ["ledger", "init", "--balance", "1e400"], {}, "balance"),
    ("limit-huge", ["ledger", "history", "agent_alpha", "--limit", "9" * 20], {}, "limit"),
    # ids
    ("id-child-of-later-run", ["run", "--id", "coll/d2-agent_alpha", "hi"], {}, "--id"),
    ("id-child-in-advance", ["run", "-d", "--id", "x/d2-agent_helper", "hi"], {}, "--id"),
    ("id-newline", ["run", "--id", "a\nb", "hi"], {}, "--id"),
    ("id-escape", ["run", "--id", "a\x1b[2Jb", "hi"], {}, "--id"),
    ("id-url-chars", ["run", "--id", "q x/y?z#w", "hi"], {}, "--id"),
    ("id-empty", ["run", "--id", "", "hi"], {}, "--id"),
    ("id-chat", ["chat", "agent_alpha", "-c", "a/b"], {}, "--id"),
    (
        "transfer-id-key-like",
        ["ledger", "transfer", "--id", "conv-pre/2/0", "agent_alpha", "agent_beta", "1"],
        {},
        "--id",
    ),
    # messages
    ("message-empty", ["run", ""], {}, "empty"),
    ("message-blank", ["run", "  \n\t "], {}, "empty"),
    ("message-not-utf8", ["run", b"caf\xe9"], {}, "UTF-8"),
    # models and overrides
    ("model-garbage", ["run", "--model", "garbage", "hi"], {}, "garbage"),
    ("model-blank", ["run", "--model", " ", "hi"], {}, "model"),
    ("set-model-garbage", ["config", "set-model", "conv-x", "garbage"], {}, "garbage"),
    ("set-tools-empty-name", ["config", "set-tools", "conv-x", ","], {}, "tools"),
    # addresses and namespaces
    ("address-port", ["conversation", "list", "--address", ":99999"], {}, "--address"),
    ("address-empty", ["conversation", "list", "--address", ""], {}, "--address"),
    ("address-env", ["conversation", "list"], {"TEMPORAL_ADDRESS": "host:0"}, "TEMPORAL_ADDRESS"),
    ("namespace-missing", ["worker", "--namespace", "no-such-namespace"], {}, "no-such-namespace"),
    ("namespace-bad", ["conversation", "list", "--namespace", "a b"], {}, "--namespace"),
    # settings files and variables
    ("config-not-utf8", ["agent", "list"], {"P2E_CONFIG": "not-utf8.yml"}, "UTF-8"),
    ("agents-not-utf8", ["agent", "list"], {"P2E_AGENTS_FILE": "not-utf8.yml"}, "UTF-8"),
    ("config-directory", ["agent", "list"], {"P2E_CONFIG": "a-dir"}, "directory"),
    ("config-timeout", ["conversation", "list"], {"P2E_CONFIG": "timeout.yaml"}, "timeout"),
    ("env-blamed", ["agent", "list"], {"P2E_DEDUP": "sometimes"}, "P2E_DEDUP"),
    ("state-dir-file", ["ledger", "balance", "agent_alpha"], {"P2E_STATE_DIR": "a-file"}, "a-file"),
    (
        "port-env",
        ["server", "status"],
        {"P2E_TEMPORAL_PORT": "abc", "TEMPORAL_ADDRESS": ""},
        "P2E_TEMPORAL_PORT",
    ),
]


@pytest.mark.parametrize(("argv", "extra", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
async def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    own_ledger: dict[str, str],
    files: dict[str, Path],
    client: Client,
    argv: list[str | bytes],
    extra: dict[str, str],
    fragment: str,
) -> None:
    env = {**own_ledger, **{k: str(files.get(v, v)) for k, v in extra.items()}}
    state_dir = Path(own_ledger["P2E_STATE_DIR"])
    ledger_before = ledger_digest(state_dir)
    workflows_before = (await client.count_workflows()).count

    done = p2e(*argv, env=env)

    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert fragment in lines[0], lines[0]
    assert "\x1b" not in stderr
    assert ledger_digest(state_dir) == ledger_before
    assert (await client.count_workflows()).count == workflows_before


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [
        (b"caf\xe9\n", "UTF-8"),
        (BIG.encode() + b"\n", "KiB"),
    ],
    ids=["not-utf8", "over-the-size-limit"],
)
async def test_a_chat_line_that_cannot_be_sent_is_one_line_exit_2(
    own_ledger: dict[str, str], client: Client, stdin: bytes, fragment: str
) -> None:
    started = p2e("chat", "agent_alpha", "-c", f"bad-line-{len(stdin)}", env=own_ledger,
                  stdin=b"/exit\n")  # fmt: skip
    assert started.returncode == 0, started.stderr
    before = (await client.count_workflows()).count

    done = p2e("chat", "agent_alpha", "-c", f"bad-line-{len(stdin)}", env=own_ledger, stdin=stdin)

    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and fragment in error_lines[0], stderr
    history = await client.get_workflow_handle(f"conv-bad-line-{len(stdin)}").fetch_history()
    sent = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert sent == []
    assert (await client.count_workflows()).count == before


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--model", "bogus/zz"], "bogus/zz"),
        (["--model", " "], "model"),
        (["-m", "   "], "the message is empty"),
        (["--tools", "get_weather,nope"], "unknown tool 'nope'"),
        (["--persona", "nobody"], "unknown persona 'nobody'"),
    ],
    ids=["model-unroutable", "model-blank", "message-blank", "tool-unknown", "persona-unknown"],
)
async def test_a_branch_refuses_what_a_run_or_an_override_refuses(
    own_ledger: dict[str, str], client: Client, change: list[str], fragment: str
) -> None:
    name = "branch-source"
    ran = p2e("run", "--id", name, "weather in Paris", env=own_ledger)
    assert ran.returncode == 0, ran.stderr
    artifacts = Path(own_ledger["P2E_STATE_DIR"]) / "artifacts"
    stored = sorted(artifacts.rglob("*"))
    before = (await client.count_workflows()).count

    done = p2e("conversation", "branch", name, "--at", "3", *change, env=own_ledger)

    stderr = done.stderr.decode("utf-8", "replace")
    assert (done.returncode, stderr.count("\n")) == (2, 1), stderr
    assert stderr.startswith("error: ") and fragment in stderr
    assert (await client.count_workflows()).count == before
    assert sorted(artifacts.rglob("*")) == stored  # no branch state written either


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--model", "openai/gpt-4o-mini", "hi"],
        ["config", "set-model", "conv-x", "gpt-4o-mini"],
        ["conversation", "branch", "branch-source", "--at", "3", "--model", "gpt-4o-mini"],
    ],
    ids=["run", "set-model", "branch"],
)
async def test_a_model_whose_api_key_is_not_set_is_refused_naming_the_variable(
    own_ledger: dict[str, str], client: Client, argv: list[str]
) -> None:
    env = {k: v for k, v in own_ledger.items() if k != "OPENAI_API_KEY"}
    ran = p2e("run", "--id", "branch-source", "weather in Paris", env=env)
    assert ran.returncode == 0, ran.stderr
    before = (await client.count_workflows()).count

    done = p2e(*argv, env=env)

    stderr = done.stderr.decode("utf-8", "replace")
    assert (done.returncode, stderr.count("\n")) == (2, 1), stderr
    assert "error: OPENAI_API_KEY is not set: " in stderr and "gpt-4o-mini needs it" in stderr
    assert (await client.count_workflows()).count == before


@pytest.mark.parametrize("how", ["argv", "chat"])
def test_content_with_escape_sequences_prints_them_visibly(
    own_ledger: dict[str, str], how: str
) -> None:
    text = "say \x1b[2J\x1b]0;pwned\x07 and \x7f please"
    if how == "argv":
        done = p2e("run", "--id", "esc-argv", text, env=own_ledger)
    else:  # stdin can carry a NUL byte too, which argv cannot
        text += " \x00"
        done = p2e("chat", "agent_alpha", "-c", "esc-chat", env=own_ledger,
                   stdin=f"{text}\n/end\n".encode())  # fmt: skip

    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert not set(out) & {"\x1b", "\x00", "\x07", "\x7f"}
    shown = text.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\x7f", "\\x7f")
    assert shown.replace("\x00", "\\x00") in out


def test_an_empty_ledger_file_stays_refused(own_ledger: dict[str, str]) -> None:
    path = Path(own_ledger["P2E_STATE_DIR"]) / "ledger.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"")

    for command in (["ledger", "balance", "agent_alpha"], ["ledger", "init"],
                    ["ledger", "verify"]):  # fmt: skip
        done = p2e(*command, env=own_ledger)
        stderr = done.stderr.decode()
        assert done.returncode == 2, stderr
        assert stderr.count("\n") == 1 and str(path) in stderr, stderr
        assert path.read_bytes() == b""
    assert not os.path.exists(f"{path}-wal")
