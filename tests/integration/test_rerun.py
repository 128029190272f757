"""Rerun views as a user makes them: `p2e rollout start --rerun-save/--rerun-serve` and
`p2e conversation watch --rerun-save` against the session's server, the recordings read
back with the rerun SDK."""

from __future__ import annotations

import json
import queue
import re
import signal
import statistics
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import P2E, p2e
from tests.integration.test_ledger_cli import own_ledger

__all__ = ["own_ledger"]  # the fixture: a state dir of its own, its ledger 100 in each wallet

DEMO = "config/rollouts/demo.yml"
ROW_ID = "rerun.controls.RowId"
Rows = dict[str, list[dict[str, Any]]]


def recording(path: Path) -> Rows:
    """Each entity path's rows in the order they were logged: component columns (and the
    sequence timelines) by name; the static rows too."""
    from rerun.chunk import RrdReader

    reader = RrdReader(path)
    assert reader.blueprints(), "the recording carries its blueprint"
    rows: Rows = {}
    for chunk in reader.stream():
        batch = chunk.to_record_batch()
        names = [n for n in batch.schema.names if n not in ("log_time", "wall")]
        columns = {n: batch.column(n).to_pylist() for n in names}
        found = rows.setdefault(chunk.entity_path, [])
        found += [{n: columns[n][i] for n in names} for i in range(batch.num_rows)]
    for found in rows.values():
        found.sort(key=lambda row: row[ROW_ID])
    return rows


def texts(rows: Rows, path: str) -> list[str]:
    return [line for row in rows[path] for line in row.get("TextLog:text") or []]


def scalars(rows: Rows, path: str) -> list[float]:
    return [value for row in rows[path] for value in row.get("Scalars:scalars") or []]


def graph(rows: Rows, path: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The graph as last logged: node id -> label, and the edges."""
    last = rows[path][-1]
    nodes = dict(zip(last["GraphNodes:node_ids"], last["GraphNodes:labels"], strict=True))
    return nodes, {(e["first"], e["second"]) for e in last["GraphEdges:edges"]}


def shown(conversation: str, env: dict[str, str]) -> dict[str, Any]:
    done = p2e("conversation", "show", conversation, "--json", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def stack_lines(label: str, data: dict[str, Any]) -> list[str]:
    """What a stack's lines start with: the conversation, the agent, step and state."""
    return [f"{label} · {e['agent_id']} · [{e['step']}] {e['kind']}:" for e in data["stack"]]


def test_rollout_start_rerun_save_records_stacks_graph_metrics_and_ledger(
    own_ledger: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out.rrd"
    done = p2e("rollout", "start", DEMO, "--repeats", "5", "--rerun-save", str(out),
               env=own_ledger, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"rerun: recording to {out}" in done.stderr
    assert "· done · 20 done of 20 arms" in done.stdout  # --rerun-save follows the rollout
    [rollout] = re.findall(r"^rollout: (\S+)$", done.stdout, re.MULTILINE)
    rows = recording(out)
    root = f"/rollouts/{rollout}"
    variants = ["plain", "warm", "expert", "without_tools"]

    # A stack log per arm, a line per stack entry, in the order of the stack.
    arms = [f"weather_desk/{v}/r{n}" for v in variants for n in range(5)]
    for arm in arms:
        lines = texts(rows, f"{root}/arms/{arm}/stack")
        expected = stack_lines(arm.rpartition("/")[2], shown(f"{rollout}/{arm}", own_ledger))
        assert len(lines) == len(expected)
        assert all(line.startswith(start) for line, start in zip(lines, expected, strict=True))

    # Per-variant series, ending at the variant's figures over its five arms.
    records = json.loads(p2e("rollout", "show", rollout, "--json", env=own_ledger).stdout)
    for variant in variants:
        mine = [r for r in records if r["variant"] == variant]
        for metric in ("score", "reward", "balance", "tokens", "cost_usd"):
            series = f"{root}/metrics/{metric}/weather_desk/{variant}"
            assert rows[series][0]["SeriesLines:names"] == [variant]
        final = {m: scalars(rows, f"{root}/metrics/{m}/weather_desk/{variant}")[-1]
                 for m in ("score", "tokens", "reward", "balance")}  # fmt: skip
        assert final["score"] == pytest.approx(statistics.mean(r["score"] for r in mine))
        tokens = statistics.mean(r["prompt_tokens"] + r["completion_tokens"] for r in mine)
        assert final["tokens"] == pytest.approx(tokens)
        assert (final["reward"], final["balance"]) == (0, 0)  # no rewards, no transfers
        arm_steps = [row["arm"] for row in rows[f"{root}/metrics/tokens/weather_desk/{variant}"]
                     if "arm" in row]  # fmt: skip
        assert arm_steps == sorted(arm_steps) and arm_steps[-1] == 5

    # The graph: the agent runs each variant, each variant its five arms.
    nodes, edges = graph(rows, f"{root}/graph")
    assert nodes["agent:agent_alpha"] == "agent_alpha"
    for variant in variants:
        group = f"group:weather_desk/{variant}"
        assert nodes[group] == f"weather_desk/{variant}"
        assert ("agent:agent_alpha", group) in edges
        assert {(group, f"{rollout}/weather_desk/{variant}/r{n}") for n in range(5)} <= edges
    assert len(nodes) == 1 + 4 + 20

    # The ledger before and after, from the rollout's snapshots.
    assert scalars(rows, f"{root}/ledger/wallets/agent_alpha") == [100.0, 100.0]
    [summary] = rows[f"{root}/ledger/summary"][-1]["TextDocument:text"]
    assert "| agent_alpha | 100.00 | 100.00 | +0.00 |" in summary


def test_conversation_watch_rerun_save_records_a_finished_delegation(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"cli-rr-{uuid.uuid4().hex[:8]}"
    ran = p2e("run", "--agent", "agent_alpha", "--id", name,
              "Delegate to agent_helper: what's the weather in Tokyo?", env=cli_env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "conversation.rrd"

    done = p2e("conversation", "watch", name, "--rerun-save", str(out), env=cli_env)

    assert done.returncode == 0, done.stderr
    rows = recording(out)
    conv, child = f"conv-{name}", f"conv-{name}/d2-agent_helper"
    root = f"/conversations/{conv}"
    lines = texts(rows, f"{root}/stack")
    expected = stack_lines(conv, shown(conv, cli_env))
    assert [line.split(":")[0] + ":" for line in lines] == expected
    assert lines[2].endswith(f"(child {child})")
    child_lines = texts(rows, f"{root}/d2-agent_helper/stack")
    assert child_lines == [line for line in child_lines if line.startswith("d2-agent_helper · ")]
    assert len(child_lines) == len(shown(child, cli_env)["stack"])

    nodes, edges = graph(rows, f"{root}/graph")
    assert nodes == {conv: conv, "agent:agent_alpha": "agent_alpha", child: "d2-agent_helper",
                     "agent:agent_helper": "agent_helper"}  # fmt: skip
    assert edges == {("agent:agent_alpha", conv), (conv, child)}

    def total(data: dict[str, Any]) -> int:
        return int(data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"])

    tokens = scalars(rows, f"{root}/metrics/tokens/{conv}")
    assert tokens == sorted(tokens) and tokens[-1] == total(shown(conv, cli_env))
    child_tokens = scalars(rows, f"{root}/metrics/tokens/{conv}/d2-agent_helper")
    assert child_tokens[-1] == total(shown(child, cli_env))


def _without_display(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollout", "start", DEMO, "--rerun", "--detach"], "exclude --detach"),
        (["rollout", "start", DEMO, "--rerun-serve", "-d"], "exclude --detach"),
        (["rollout", "start", DEMO, "--rerun"], "needs a display"),
        (["conversation", "watch", "conv-anything", "--rerun"], "needs a display"),
        (["rollout", "start", DEMO, "--rerun-save", "out.txt"], "name a FILE.rrd"),
        (["conversation", "watch", "x", "--rerun-save", "/no/such/dir/x.rrd"], "no directory"),
    ],
)
def test_bad_rerun_options_are_one_line_and_exit_2(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    done = p2e(*args, env=_without_display(cli_env))
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    if message == "needs a display":
        assert "--rerun-save FILE.rrd or --rerun-serve" in line


def test_rerun_without_a_display_starts_no_rollout(cli_env: dict[str, str]) -> None:
    before = p2e("rollout", "list", "--json", env=cli_env).stdout
    done = p2e("rollout", "start", DEMO, "--rerun", env=_without_display(cli_env))
    assert done.returncode == 2
    assert p2e("rollout", "list", "--json", env=cli_env).stdout == before


def ctrl_c_as_in_a_terminal() -> None:
    """Ctrl-C's default in the child, as a terminal gives it: a suite started in the
    background by a non-interactive shell (`make test &`) runs with SIGINT ignored, which
    every child would inherit and Python would then leave ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_rerun_serve_serves_the_viewer_until_ctrl_c_and_saves_too(
    own_ledger: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "pay.yml"
    path.write_text(
        "repeats: 2\nteams:\n  payroll:\n    initial_message: Transfer 25 to agent_beta for "
        "helping\n    base: {agent_id: agent_alpha, model: scripted/default}\n"
        "    variants: [{id: pays}]\n"
    )
    out = tmp_path / "pay.rrd"
    command = [P2E, "rollout", "start", str(path), "--rerun-serve", "--rerun-save", str(out)]
    proc = subprocess.Popen(
        command, env=own_ledger, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    printed: list[str] = []

    def read() -> None:
        for line in proc.stderr or []:
            lines.put(line)

    def drain() -> None:  # stdout read as it comes: a full pipe would stop the command
        printed.extend(proc.stdout or [])

    reader = threading.Thread(target=read)
    reader.start()
    drainer = threading.Thread(target=drain)
    drainer.start()
    try:
        seen: list[str] = []
        while not any("until Ctrl-C" in line for line in seen):
            seen.append(lines.get(timeout=120))
        [url] = re.findall(r"serving the Rerun recording at (\S+) until Ctrl-C", "".join(seen))
        assert url.startswith("http://127.0.0.1:") and "?url=rerun%2Bhttp" in url
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and "Rerun" in page.read().decode()
        assert proc.poll() is None  # the rollout has ended; the viewer is still served
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            said = "".join(seen + list(lines.queue))
            pytest.fail(f"still running 60 s after Ctrl-C; it said:\n{said}")
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        drainer.join(timeout=10)
    assert "stopped serving the Rerun recording" in "".join(list(lines.queue))
    assert "Comparison on score" in "".join(printed)

    rows = recording(out)
    [root] = {p.split("/arms/")[0] for p in rows if "/arms/" in p}
    # agent_alpha paid 25 in each of the two arms: the variant's balance and the wallets.
    assert scalars(rows, f"{root}/metrics/balance/payroll/pays")[-1] == -50.0
    assert scalars(rows, f"{root}/ledger/wallets/agent_alpha") == [100.0, 50.0]
    assert scalars(rows, f"{root}/ledger/wallets/agent_beta") == [100.0, 150.0]
