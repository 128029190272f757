"""`p2e rollout` as a user runs it: a subprocess against the session's server."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.test_cli import P2E, p2e

DEMO = "config/rollouts/demo.yml"


def test_start_follow_ends_with_the_comparison_and_the_rollout_reads_back(
    cli_env: dict[str, str],
) -> None:
    name = f"cli-demo-{uuid.uuid4().hex[:8]}"
    done = p2e("rollout", "start", DEMO, "--follow", "--repeats", "2", "--id", name, env=cli_env)
    assert done.returncode == 0, done.stderr
    rollout = f"rollout-{name}"
    assert f'filter P2eRollout="{rollout}"' in done.stderr
    # The live table, as it ended, then the comparison: the three variants that tie on the
    # best mean leave no best to mark.
    assert f"{rollout} · done · 8 done of 8 arms" in done.stdout
    # Piped, each heading still starts a line of its own.
    assert re.search(r"^Comparison on score, 95% intervals, against weather_desk/plain$",
                     done.stdout, re.M), done.stdout  # fmt: skip
    assert "◆ plain" in done.stdout and "n.s." in done.stdout and "★ ◆" not in done.stdout
    assert "no best: 3 variants share the best mean" in done.stdout
    assert f"rollout: {rollout}" in done.stdout

    listed = json.loads(p2e("rollout", "list", "--json", env=cli_env).stdout)
    mine = next(row for row in listed if row["id"] == rollout)
    assert (mine["name"], mine["arms"], mine["phase"], mine["status"]) == (
        "demo", 8, "done", "completed",
    )  # fmt: skip

    compared = p2e("rollout", "compare", name, "--baseline", "expert", "--json", env=cli_env)
    assert compared.returncode == 0, compared.stderr
    data = json.loads(compared.stdout)
    assert data["baseline"] == "weather_desk/expert"
    plain = next(v for v in data["variants"] if v["variant"] == "plain")
    assert plain["metric"]["low"] is not None and plain["metric"]["high"] is not None
    assert plain["versus"]["p_value"] is not None and "p_holm" in plain["versus"]

    exported = p2e("rollout", "export", name, "--format", "csv", env=cli_env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"done"}
    assert {r["workflow_id"].rpartition("/")[0] for r in rows} >= {f"{rollout}/weather_desk/plain"}

    shown = json.loads(p2e("rollout", "show", name, "--json", env=cli_env).stdout)
    assert [r["key"] for r in shown][:2] == ["weather_desk/plain/r0", "weather_desk/plain/r1"]
    status = json.loads(p2e("rollout", "status", name, "--json", env=cli_env).stdout)
    assert (status["phase"], status["total"], status["status"]) == ("done", 8, "completed")


def test_run_with_a_rollout_file_runs_the_rollout(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "tiny.yml"
    path.write_text(
        "teams:\n  desk:\n    initial_message: hello\n    base: {agent_id: agent_beta}\n"
        "    variants: [{id: a}, {id: b, model: openai/gpt-4o}]\n"
    )
    done = p2e("run", str(path), "--model", "scripted/default", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "Comparison on score" in done.stdout and "2 done of 2 arms" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollout", "start", "missing.yml"], "missing.yml"),
        (["rollout", "start", DEMO, "--repeats", "0"], "--repeats"),
        (["rollout", "start", DEMO, "--follow", "--detach"], "exclude each other"),
        (["rollout", "start", DEMO, "--model", "no such model"], "model"),
        (["rollout", "status", "rollout-nobody-here"], "no rollout 'rollout-nobody-here'"),
        (["rollout", "compare", "nobody"], "no rollout"),
        (["rollout", "schedule", "create", DEMO, "--every", "soon"], "--every"),
        (["rollout", "schedule", "create", DEMO], "--cron or --every"),
        (["rollout", "schedule", "describe", "nobody"], "no schedule 'nobody'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    done = p2e(*args, env=cli_env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "Traceback" not in done.stderr


def test_a_bad_file_names_its_line_and_starts_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "teams:\n  desk:\n    initial_message: hi\n    base: {agent_id: agent_alpha}\n"
        "    variants:\n      - id: hot\n        temperature: 7\n"
    )
    before = p2e("rollout", "list", "--json", env=cli_env).stdout
    done = p2e("rollout", "start", str(path), env=cli_env)
    assert done.returncode == 2
    assert f"error: {path}:7: 'teams.desk.variants.0.temperature'" in done.stderr
    assert p2e("rollout", "list", "--json", env=cli_env).stdout == before


def test_a_budget_smaller_than_one_arm_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "cheap.yml"
    path.write_text(
        "budget: 0.000001\nteams:\n  desk:\n    initial_message: What's the weather in Paris?\n"
        "    base: {agent_id: agent_alpha, model: openai/gpt-4o}\n    variants: [{id: a}]\n"
    )
    done = p2e("rollout", "start", str(path), env={**cli_env, "OPENAI_API_KEY": "sk-unused"})
    assert done.returncode == 2
    assert "does not pay for one arm" in done.stderr and "openai/gpt-4o" in done.stderr


def _status_json(name: str, env: dict[str, str]) -> dict[str, object]:
    done = p2e("rollout", "status", name, "--json", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def _counts(status: dict[str, object]) -> dict[str, int]:
    variants = status["variants"]
    assert isinstance(variants, list)
    return {c: sum(v[c] for v in variants) for c in ("done", "failed", "skipped", "cancelled")}


def test_a_cancelled_rollout_reports_its_arms_as_they_ended_without_a_worker(
    cli_env: dict[str, str],
) -> None:
    name = f"cli-cancel-{uuid.uuid4().hex[:8]}"
    started = p2e("rollout", "start", DEMO, "--detach", "--repeats", "100", "--id", name,
                  env=cli_env)  # fmt: skip
    assert started.returncode == 0, started.stderr
    waiting = p2e("rollout", "status", name, env=cli_env)
    assert waiting.returncode == 1 and waiting.stdout == ""
    assert "no worker serves task queue" in waiting.stderr and "(p2e worker)" in waiting.stderr

    worker = subprocess.Popen(
        [P2E, "worker"], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert worker.stdout is not None and "worker ready" in worker.stdout.readline()
        deadline = time.monotonic() + 120
        while _counts(status := _status_json(name, cli_env))["done"] < 8:
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        cancelled = p2e("rollout", "cancel", name, env=cli_env)
        assert cancelled.returncode == 0, cancelled.stderr
        while (status := _status_json(name, cli_env))["status"] == "running":
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)

    # No worker now: a closed rollout's status comes from its stored records.
    final = _status_json(name, cli_env)
    counts = _counts(final)
    assert final["phase"] == "cancelled" and sum(counts.values()) == 400
    assert counts["done"] >= 8 and counts["cancelled"] > 0
    shown = p2e("rollout", "status", name, env=cli_env)
    assert shown.returncode == 0, shown.stderr
    title = f"rollout-{name} · cancelled · {counts['done']} done"
    assert title in shown.stdout and f"{counts['cancelled']} cancelled of 400 arms" in shown.stdout
    assert "100/100" not in shown.stdout  # a variant's arms done, of its arms
    header = next(line for line in shown.stdout.splitlines() if "variant" in line)
    assert "cancelled" in header.split()

    compared = json.loads(p2e("rollout", "compare", name, "--json", env=cli_env).stdout)
    assert (compared["baseline"], compared["metric"]) == ("weather_desk/plain", "score")


def test_grid_variants_are_named_by_what_they_vary_on_every_screen(
    cli_env: dict[str, str],
) -> None:
    name = f"cli-grid-{uuid.uuid4().hex[:8]}"
    narrow = {**cli_env, "COLUMNS": "80"}
    args = ["rollout", "start", "config/rollouts/weather.yml", "--follow", "--repeats", "1"]
    done = p2e(*args, "--id", name, env=narrow)
    assert done.returncode == 0, done.stderr
    names = [
        f"model=scripted:{model},temperature={t}"
        for model in ("default", "careful")
        for t in (0.2, 0.8)
    ]
    # The live table and both comparison tables, at 80 columns: each name whole.
    for variant in names:
        assert done.stdout.count(variant) == 3, done.stdout
    assert "v001" not in done.stdout
    # A tie of equal scripted scores marks no best.
    assert "★" not in done.stdout.split("Comparison on score")[1]
    assert "no best: all 4 variants have the same mean" in done.stdout

    status = json.loads(p2e("rollout", "status", name, "--json", env=cli_env).stdout)
    assert [v["variant"] for v in status["variants"]] == names
    shown = json.loads(p2e("rollout", "show", name, "--json", env=cli_env).stdout)
    assert {r["variant"] for r in shown} == set(names)
    assert shown[0]["key"] == f"forecasters/{names[0]}/c0-r0"
    compared = json.loads(p2e("rollout", "compare", name, "--json", env=cli_env).stdout)
    assert [v["variant"] for v in compared["variants"]] == names
    exported = p2e("rollout", "export", name, "--format", "csv", env=cli_env).stdout
    assert {r["variant"] for r in csv.DictReader(io.StringIO(exported))} == set(names)
    # A name is what a search filters by.
    rollout = f"rollout-{name}"
    found = p2e("conversation", "list", "--rollout", rollout, "--json", env=cli_env)
    assert len(json.loads(found.stdout)) == 12, found.stdout
