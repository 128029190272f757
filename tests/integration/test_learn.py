"""`p2e learn` as a user runs it, offline: the demo improves agent_alpha's instructions
and proves it on held-out tasks; the control, judged on what no prompt can change, does not."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import yaml

from p2engine.runtime.settings import PROJECT_ROOT
from tests.integration.test_cli import p2e

LEARN = PROJECT_ROOT / "config" / "learn"


def test_the_demo_improves_on_held_out_tasks_and_its_winner_can_be_applied(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    agents = tmp_path / "agents.yml"
    shutil.copy(PROJECT_ROOT / "config" / "agents.yml", agents)
    env = {**cli_env, "P2E_AGENTS_FILE": str(agents)}
    name = f"demo-{uuid.uuid4().hex[:6]}"
    done = p2e("learn", str(LEARN / "demo.yml"), "--id", name, "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "10 train, 5 validation and 5 test tasks (seed 7)" in done.stderr
    result = json.loads(done.stdout)
    assert result["improved"] is True and result["best"] != result["baseline"]
    test = result["test"]
    assert test["ci_low"] > 0 and test["p_value"] < 0.05 and test["pairs"] == 10
    assert test["best"]["mean"] > test["baseline"]["mean"]
    # The winner's instruction says what the judge's reasons asked for.
    winner = next(c for c in result["candidates"] if c["generation"] >= 1)
    assert "Cite the tool you used." in winner["config"]["system_prompt"]

    shown = p2e("learn", "show", f"learn-{name}", "--json", env=env)
    assert json.loads(shown.stdout)["improved"] is True
    table = p2e("learn", "show", name, env={**env, "COLUMNS": "100"})
    assert table.returncode == 0, table.stderr
    assert "improved: +0.750 on the held-out tasks" in table.stdout
    assert "pareto front:" in table.stdout and "learning curve" in table.stdout

    applied = p2e("learn", "apply", name, env=env)
    assert applied.returncode == 0, applied.stderr
    [written] = (tmp_path / "agents.learned").glob("agent_alpha@*.yml")
    data = yaml.safe_load(written.read_text())
    assert data["learned_from"] == f"learn-{name}"
    assert data["lineage"][0]["parent"] is None and data["lineage"][-1]["config"] == result["best"]
    assert "Cite the tool you used." in data["agent"]["system_prompt"]
    assert p2e("learn", "apply", name, env=env).returncode == 0  # the same again: no change


def test_the_control_reports_no_improvement(cli_env: dict[str, str]) -> None:
    name = f"control-{uuid.uuid4().hex[:6]}"
    done = p2e("learn", str(LEARN / "control.yml"), "--id", name, "--json", env=cli_env,
               timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["improved"] is False and result["best"] == result["baseline"]
    assert result["verdict"].startswith("no significant improvement")
    assert all(g["failed"] for g in result["generations"])  # nothing a prompt could change


def test_a_bad_learn_file_starts_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text((LEARN / "demo.yml").read_text() + "knobs:\n  persona_text: true\n")
    done = p2e("learn", str(path), "--id", "never", env=cli_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:") and "knobs" in line
    assert p2e("learn", "show", "never", env=cli_env).returncode != 0
