"""`p2e learn` as a user runs it, offline: the demo improves agent_alpha's instructions
and proves it on held-out tasks; the control, judged on what no prompt can change, does not."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client, WorkflowExecutionStatus

from p2engine.runtime.settings import PROJECT_ROOT
from tests.integration.test_cli import P2E, p2e

LEARN = PROJECT_ROOT / "config" / "learn"


@pytest.fixture()
def learn_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A state dir of its own: the demo's weather lookups fill a tool cache, which other
    tests expect to find empty for their cities."""
    return {**cli_env, "P2E_STATE_DIR": str(tmp_path / "state")}


def test_the_demo_improves_on_held_out_tasks_and_its_winner_can_be_applied(
    learn_env: dict[str, str], tmp_path: Path
) -> None:
    agents = tmp_path / "agents.yml"
    shutil.copy(PROJECT_ROOT / "config" / "agents.yml", agents)
    env = {**learn_env, "P2E_AGENTS_FILE": str(agents)}
    name = f"demo-{uuid.uuid4().hex[:6]}"
    done = p2e("learn", str(LEARN / "demo.yml"), "--id", name, "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "10 train, 5 validation and 5 test tasks (seed 7)" in done.stderr
    assert "generation 1/3: parent " in done.stderr  # each generation as it ends
    result = json.loads(done.stdout)
    assert result["improved"] is True and result["best"] != result["baseline"]
    test = result["test"]
    assert test["ci_low"] > 0 and test["p_value"] < 0.05 and test["pairs"] == 10
    assert test["best"]["mean"] > test["baseline"]["mean"]
    # The winner's instruction says what the judge's reasons asked for.
    winner = next(c for c in result["candidates"] if c["generation"] >= 1)
    assert "Cite the tool you used." in winner["config"]["system_prompt"]
    # Every candidate is a record in the store, its lineage with it.
    record = json.loads(p2e("artifact", "cat", winner["record"], env=env).stdout)
    assert record["kind"] == "AgentConfig" and record["parent"] == result["baseline"]
    assert record["id"] == winner["id"] and record["config"] == winner["config"]
    assert record["why"]

    shown = p2e("learn", "show", f"learn-{name}", "--json", env=env)
    assert json.loads(shown.stdout)["improved"] is True
    table = p2e("learn", "show", name, env={**env, "COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    curve = table.stdout.split("pareto front:")[0]
    assert max(len(line) for line in curve.splitlines()) <= 80  # the table fits
    assert result["best"] in curve and result["baseline"] in curve  # ids whole
    assert "improved: +0.750 on the held-out tasks" in table.stdout
    assert "pareto front:" in table.stdout and "learning curve" in table.stdout

    # The curve drawn: a PNG, and a Rerun recording.
    plot, rrd = tmp_path / "curve.png", tmp_path / "curve.rrd"
    drawn = p2e("learn", "show", name, "--plot", str(plot), "--rerun-save", str(rrd), env=env)
    assert drawn.returncode == 0, drawn.stderr
    assert plot.read_bytes().startswith(b"\x89PNG") and rrd.stat().st_size > 0
    wrong = p2e("learn", "show", name, "--plot", str(tmp_path / "curve.jpg"), env=env)
    assert wrong.returncode == 2 and "--plot writes a PNG" in wrong.stderr

    applied = p2e("learn", "apply", name, env=env)
    assert applied.returncode == 0, applied.stderr
    [written] = (tmp_path / "agents.learned").glob("agent_alpha@*.yml")
    data = yaml.safe_load(written.read_text())
    assert data["learned_from"] == f"learn-{name}"
    assert data["lineage"][0]["parent"] is None and data["lineage"][-1]["config"] == result["best"]
    assert "Cite the tool you used." in data["agent"]["system_prompt"]
    assert p2e("learn", "apply", name, env=env).returncode == 0  # the same again: no change


def test_the_control_reports_no_improvement(learn_env: dict[str, str]) -> None:
    name = f"control-{uuid.uuid4().hex[:6]}"
    done = p2e("learn", str(LEARN / "control.yml"), "--id", name, "--json", env=learn_env,
               timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["improved"] is False and result["best"] == result["baseline"]
    assert result["verdict"].startswith("no significant improvement")
    assert all(g["failed"] for g in result["generations"])  # nothing a prompt could change


def test_a_bad_run_name_is_refused_before_the_file_is_read(cli_env: dict[str, str]) -> None:
    done = p2e("learn", str(LEARN / "demo.yml"), "--id", "bad name", env=cli_env)
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert done.stderr.startswith("error: --id 'bad name' may hold only")


def test_a_bad_learn_file_starts_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text((LEARN / "demo.yml").read_text() + "knobs:\n  persona_text: true\n")
    done = p2e("learn", str(path), "--id", "never", env=cli_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:") and "knobs" in line
    unknown = p2e("learn", "show", "never", env=cli_env)
    assert (unknown.returncode, unknown.stderr) == (2, "error: no learning run 'learn-never'\n")


async def arms_started(env: dict[str, str], prefix: str) -> bool:
    """Wait until a conversation whose id starts with `prefix` runs; whether one did while
    the learning run was still going."""
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    query = f"WorkflowId STARTS_WITH '{prefix}'"
    for _ in range(600):
        if [e async for e in client.list_workflows(query, limit=1)]:
            learn = await client.get_workflow_handle(prefix.split("/")[0]).describe()
            return learn.status == WorkflowExecutionStatus.RUNNING
        await asyncio.sleep(0.05)
    return False


def comparable(result: dict[str, object]) -> dict[str, object]:
    """A run's result without what names the run itself."""
    text = json.dumps(result, sort_keys=True).replace(str(result["learn_id"]), "RUN")
    data: dict[str, object] = json.loads(text)
    data.pop("learn_id")
    return data


def killed_and_resumed(env: dict[str, str], path: Path, name: str, stage: str) -> dict[str, Any]:
    """The result of learning run `name` whose worker was SIGKILLed once arms of `stage`
    (e.g. "g1-train") ran, and which a replacement worker then finished."""
    worker = subprocess.Popen([P2E, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert worker.stdout is not None and "worker ready" in worker.stdout.readline()
        started = p2e("learn", str(path), "--id", name, "--detach", env=env)
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"learn-{name}"
        assert asyncio.run(arms_started(env, f"learn-{name}/{stage}/")), "no arm started"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    # No worker now: the run waits, and says so; its winner cannot be applied yet.
    waiting = p2e("learn", "show", name, "--json", env=env)
    assert json.loads(waiting.stdout) == {"running": True, "generations": None}
    refused = p2e("learn", "apply", name, env=env)
    assert refused.returncode == 2 and "still running" in refused.stderr
    replacement = subprocess.Popen([P2E, "worker"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):  # until it has ended, on the replacement worker
            survived = p2e("learn", "show", name, "--json", env=env)
            assert survived.returncode == 0, survived.stderr
            if "running" not in json.loads(survived.stdout):
                break
            time.sleep(1)
    finally:
        replacement.terminate()
        replacement.wait(timeout=60)
    result: dict[str, Any] = json.loads(survived.stdout)
    return result


def test_a_worker_killed_mid_generation_leaves_the_same_result_as_a_run_without(
    learn_env: dict[str, str],
) -> None:
    name = f"durable-{uuid.uuid4().hex[:6]}"
    # Mid-generation: the first generation's train rollout has arms running.
    killed = killed_and_resumed(learn_env, LEARN / "demo.yml", name, "g1-train")
    again = p2e("learn", str(LEARN / "demo.yml"), "--id", f"{name}-again", "--json", env=learn_env,
                timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert comparable(killed) == comparable(json.loads(again.stdout))
    assert killed["improved"] is True
    # Every arm ran once: each scoring rollout has as many arms as it planned, no more.
    for generation in killed["generations"]:
        for rollout in generation["rollouts"]:
            arms = json.loads(p2e("rollout", "show", rollout, "--json", env=learn_env).stdout)
            assert len(arms) == len({a["key"] for a in arms}) > 0


def test_propagation_pushes_the_best_config_to_running_siblings_as_a_recorded_override(
    learn_env: dict[str, str],
) -> None:
    name = f"propagate-{uuid.uuid4().hex[:6]}"
    done = p2e("learn", str(LEARN / "propagate.yml"), "--id", name, "--json", env=learn_env,
               timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    first, second = result["generations"]
    assert first["siblings"] == [] and first["pushes"] == []  # the baseline alone at first
    assert second["siblings"] and second["pushes"]
    candidates = {c["id"]: c["config"] for c in result["candidates"]}
    for push in second["pushes"]:
        assert push["source"] != push["started_as"] and push["knobs"] == ["system_prompt"]
        # The arm recorded the push: the release update in its history, and the pushed
        # instructions in force on every step after it.
        history = asyncio.run(updates(learn_env, push["arm"]))
        assert history == ["release"]
        shown = p2e("conversation", "show", push["arm"], "--json", env=learn_env)
        stack = json.loads(shown.stdout)["stack"]
        reply = next(e for e in reversed(stack) if e["kind"] == "AssistantMessage")
        pushed_prompt = candidates[push["source"]]["system_prompt"]
        assert reply["overrides"]["system_prompt"] == pushed_prompt
        assert all(e["overrides"] is None for e in stack[:2])  # before the barrier: none
    table = p2e("learn", "show", name, env=learn_env)
    assert f"generation 2, barrier 1: {second['pushes'][0]['source']} pushed to" in table.stdout


def test_a_worker_killed_at_a_barrier_propagates_as_a_run_without(
    learn_env: dict[str, str],
) -> None:
    name = f"barrier-{uuid.uuid4().hex[:6]}"
    killed = killed_and_resumed(learn_env, LEARN / "propagate.yml", name, "g2-train")
    again = p2e("learn", str(LEARN / "propagate.yml"), "--id", f"{name}-again", "--json",
                env=learn_env, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert comparable(killed) == comparable(json.loads(again.stdout))
    assert killed["generations"][1]["pushes"]


async def updates(env: dict[str, str], workflow_id: str) -> list[str]:
    """The names of the updates a conversation took, from its history."""
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
