"""The `p2e` command line as a user runs it: a subprocess against the session's server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from p2engine.agents.registry import AgentRegistry
from p2engine.contract.agent_config import AgentConfig
from p2engine.runtime.settings import PROJECT_ROOT

P2E = str(Path(sys.executable).parent / "p2e")


def p2e(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [P2E, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_run_prints_reply_conversation_id_and_ui_link(cli_env: dict[str, str]) -> None:
    done = p2e("run", "--agent", "agent_alpha", "--id", "cli-paris", "weather in Paris?",
               env=cli_env)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "In Paris it is 15°C" in done.stdout
    assert "conversation: conv-cli-paris" in done.stdout
    assert "running one in this process" in done.stderr

    shown = p2e("conversation", "show", "conv-cli-paris", "--json", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [entry["kind"] for entry in data["stack"]] == [
        "UserMessage", "ToolCall", "ToolResult", "AssistantMessage", "Finished",
    ]  # fmt: skip
    assert data["reason"] == "done"
    # The conversation names the agent config it started with, as its model steps' spans do.
    agent = AgentRegistry.load(PROJECT_ROOT / "config" / "agents.yml").get("agent_alpha")
    assert data["config"] == AgentConfig.of(agent, {}).id

    listed = json.loads(p2e("conversation", "list", "--json", env=cli_env).stdout)
    assert any(row["id"] == "conv-cli-paris" and row["agent"] == "agent_alpha" for row in listed)


def test_run_with_eval_scores_each_step_and_eval_show_lists_the_scores(
    cli_env: dict[str, str],
) -> None:
    name = f"cli-eval-{uuid.uuid4().hex[:8]}"
    done = p2e("run", "--agent", "agent_alpha", "--id", name, "--eval", "default, tool_succeeded",
               "What's the weather in Paris?", env=cli_env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "finished: done after 3 steps" in done.stderr and ", score 0." in done.stderr
    assert re.search(r"score 0\.\d\d \(.*; judges: [1-9]\d* tokens, \$0\.0000\)", done.stderr)

    shown = p2e("eval", "show", f"conv-{name}", "--json", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    rows = [(e["step"], e["kind"], e["evaluator"]) for e in data["evaluations"]]
    assert rows == [
        (1, "ToolCall", "default"),
        (2, "ToolResult", "tool_succeeded"),
        (3, "AssistantMessage", "default"),
    ]
    scores = [e["score"] for e in data["evaluations"]]
    assert all(0 < score <= 1 for score in scores)
    assert data["score"] == pytest.approx(sum(scores) / 3)
    assert data["evaluations"][1]["rationale"] == "get_weather returned ok"
    # The judge behind `default` spent tokens; a rule spends none.
    assert [e["tokens"] > 0 for e in data["evaluations"]] == [True, False, True]
    assert data["evaluations"][2]["rationale"] == "weighted mean of helpful, within_tokens"
    # Every score was printed live, also one that landed after its step was shown, and the
    # summary holds each evaluator's part of the mean.
    for e in data["evaluations"]:
        assert f"{e['evaluator']} {e['score']:.2f}" in done.stderr
    default = (scores[0] + scores[2]) / 2
    summary = f"score {data['score']:.2f} (default {default:.2f} x2, tool_succeeded 1.00; judges"
    assert summary in done.stderr

    for _ in range(20):  # visibility catches up a moment after the run closes
        shown_top = p2e("eval", "top", "-a", "agent_alpha", "-n", "1000", "--json", env=cli_env)
        top = json.loads(shown_top.stdout)
        if any(row["conversation_id"] == f"conv-{name}" for row in top):
            break
    listed = next(row for row in top if row["conversation_id"] == f"conv-{name}")
    assert listed["score"] == pytest.approx(data["score"])

    by_tool = p2e("eval", "top", "--metric", "tool_succeeded", "-n", "1000", "--json", env=cli_env)
    assert by_tool.returncode == 0, by_tool.stderr
    mine = next(
        row
        for row in json.loads(by_tool.stdout)
        if row["conversation_id"] == listed["conversation_id"]
    )
    assert (mine["metric"], mine["value"]) == ("tool_succeeded", 1.0)
    unknown = p2e("eval", "top", "--metric", "nope", env=cli_env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: unknown evaluator 'nope'; known evaluators: default")
    assert len(unknown.stderr.strip().splitlines()) == 1

    refused = p2e("run", "--eval", "default,nope", "hi", env=cli_env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --eval: unknown evaluator 'nope'; known evaluators: default, gives_temperature, "
        "helpful, lucky_city, tool_succeeded, weather_report, within_tokens"
    ]


def test_eval_compare_judges_two_answers_and_refuses_what_it_cannot_compare(
    cli_env: dict[str, str],
) -> None:
    names = [f"cli-pair-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for name, agent, question in zip(
        names,
        ("agent_alpha", "agent_beta", "agent_alpha"),
        ("What's the weather in Paris?", "What's the weather in Paris?", "hello"),
        strict=True,
    ):
        done = p2e("run", "--agent", agent, "--id", name, question, env=cli_env)
        assert done.returncode == 0, done.stderr

    compared = p2e("eval", "compare", names[0], names[1], "--json", env=cli_env)
    assert compared.returncode == 0, compared.stderr
    outcome = json.loads(compared.stdout)
    assert outcome["evaluator_id"] == "better_answer" and outcome["winner"] in ("a", "b", "tie")
    assert {"value", "swapped", "ref", "usage"} <= set(outcome)
    record = json.loads(p2e("artifact", "cat", outcome["ref"], env=cli_env).stdout)
    assert (record["kind"], record["a"]["conversation_id"]) == ("Comparison", f"conv-{names[0]}")

    shown = p2e("eval", "compare", names[0], names[1], env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"better_answer v1: ((A|B) \(cli-pair-\w+\)|a tie)", shown.stdout)
    assert re.search(r"\(shown cli-pair-\w+ first, then cli-pair-\w+\)", shown.stdout)

    different = p2e("eval", "compare", names[0], names[2], env=cli_env)
    assert different.returncode == 2
    assert "answer different questions" in different.stderr
    assert len(different.stderr.strip().splitlines()) == 1
    single = p2e("eval", "compare", names[0], names[1], "--eval", "default", env=cli_env)
    assert (single.returncode, single.stderr.count("\n")) == (2, 1)
    assert "'default' scores one answer and cannot compare two" in single.stderr
    listed = json.loads(p2e("eval", "list", "--json", env=cli_env).stdout)
    assert {"id": "better_answer", "trigger": "pairs"}.items() <= next(
        e for e in listed if e["id"] == "better_answer"
    ).items()


def test_detach_prints_the_id_and_running_again_attaches(cli_env: dict[str, str]) -> None:
    detached = p2e("run", "--id", "cli-detach", "--detach", "hello", env=cli_env)
    assert detached.returncode == 0, detached.stderr
    assert detached.stdout.strip() == "conv-cli-detach"

    attached = p2e("run", "--id", "cli-detach", "hello", env=cli_env)
    assert attached.returncode == 0, attached.stderr
    assert "already exists; attaching" in attached.stderr
    assert "Hello!" in attached.stdout


def test_unknown_agent_is_one_line_and_exit_2(cli_env: dict[str, str]) -> None:
    done = p2e("run", "--agent", "nosuch_agent", "hi", env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown agent 'nosuch_agent'; known agents: "
        "agent_alpha, agent_beta, agent_helper, child, reviewer, treasurer"
    ]
    assert done.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        ["run", "hi"],
        ["worker"],
        ["conversation", "list"],
        ["conversation", "show", "conv-x"],
    ],
)
def test_unreachable_temporal_is_one_line_and_exit_2(
    cli_env: dict[str, str], command: list[str]
) -> None:
    env = {**cli_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = p2e(*command, env=env, timeout=10)

    assert done.returncode == 2
    assert done.stderr.strip() == "error: cannot reach Temporal at 127.0.0.1:1 (namespace default)"
    assert "Traceback" not in done.stderr


def test_show_unknown_conversation_is_one_line(cli_env: dict[str, str]) -> None:
    done = p2e("conversation", "show", "conv-does-not-exist", env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip() == "error: no conversation 'conv-does-not-exist'"


def test_help_does_not_load_litellm_rerun_or_the_worker(cli_env: dict[str, str]) -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['p2e', '--help']\n"
        "from p2engine.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litellm', 'rerun', 'temporalio.worker', 'temporalio.client')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env, capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in done.stdout


def test_agent_list_names_the_configured_agents(cli_env: dict[str, str]) -> None:
    done = p2e("agent", "list", "--json", env=cli_env)

    assert done.returncode == 0
    agents = {a["id"]: a for a in json.loads(done.stdout)}
    assert agents["agent_alpha"]["tools"] == [
        "get_weather", "delegate", "check_balance", "transfer_funds", "reward_agent",
    ]  # fmt: skip
    assert set(agents) == {"agent_alpha", "agent_beta", "agent_helper", "treasurer", "child",
                           "reviewer"}  # fmt: skip


def test_eval_list_names_built_in_and_configured_evaluators(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    done = p2e("eval", "list", "--json", env=cli_env)

    assert done.returncode == 0
    listed = {e["id"]: e for e in json.loads(done.stdout)}
    assert listed["tool_succeeded"]["source"] == "built-in"
    assert listed["default"] == {
        "id": "default",
        "version": "1",
        "kind": "composite",
        "trigger": "step",
        "source": "config",
        "description": "the judge's grade of each step, within the token budget",
    }

    bad = tmp_path / "evals.yml"
    bad.write_text("evaluators:\n  x: {kind: composite, of: {nope: 1}}\n")
    refused = p2e("eval", "list", env={**cli_env, "P2E_EVALS_FILE": str(bad)})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: {bad}: composite 'x' names unknown evaluator 'nope'; known evaluators: "
        "tool_succeeded"
    ]


def test_server_status_without_a_server_says_so(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "P2E_STATE_DIR": str(tmp_path)}
    env.pop("TEMPORAL_ADDRESS")
    done = p2e("server", "status", env=env)

    assert done.returncode == 1
    assert "running    no" in done.stdout
    assert str(tmp_path / "temporal.db") in done.stdout


def test_artifact_show_cat_and_diff_cover_every_kind_of_node(cli_env: dict[str, str]) -> None:
    runs = {
        "weather": "What's the weather in Paris?",
        "handoff": "Delegate to agent_helper: what's the weather in Tokyo?",
    }
    shown: dict[str, list[dict[str, Any]]] = {}
    for key, message in runs.items():
        name = f"cli-artifacts-{key}-{uuid.uuid4().hex[:6]}"
        done = p2e("run", "--id", name, "--eval", "default,tool_succeeded", message, env=cli_env)
        assert done.returncode == 0, done.stderr
        listed = p2e("artifact", "show", f"conv-{name}", "--json", env=cli_env)
        assert listed.returncode == 0, listed.stderr
        shown[key] = json.loads(listed.stdout)

    rows = shown["weather"] + shown["handoff"]
    kinds = {row["kind"] for row in rows}
    # A delegating reply is stored as a ToolCall node (AgentCall is the stack's name for it).
    assert kinds == {
        "UserMessage", "ToolCall", "ToolResult", "AssistantMessage", "AgentResult",
        "Evaluation", "Content",
    }  # fmt: skip
    for kind in kinds:  # every kind reads back whole
        row = next(r for r in rows if r["kind"] == kind)
        cat = p2e("artifact", "cat", row["ref"][:10], env=cli_env)
        assert cat.returncode == 0, cat.stderr
        if kind == "Content":
            assert json.loads(cat.stdout) == row["content"]
        else:
            assert json.loads(cat.stdout)["kind"] == kind
    only = p2e("artifact", "show", f"conv-{name}", "--kind", "evaluation", "--json", env=cli_env)
    assert {r["kind"] for r in json.loads(only.stdout)} == {"Evaluation"}

    answers = [next(r for r in shown[k] if r["kind"] == "AssistantMessage") for k in runs]
    diff = p2e("artifact", "diff", answers[0]["ref"], answers[1]["ref"], env=cli_env)
    assert diff.returncode == 0, diff.stderr
    assert "-In Paris it is 15°C" in diff.stdout
    assert "+In Tokyo it is 18°C" in diff.stdout

    missing = p2e("artifact", "cat", "abcdef", env=cli_env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no artifact abcdef in ")
    for short in ("abcd", "xyz123", "g" * 64):
        refused = p2e("artifact", "cat", short, env=cli_env)
        assert (refused.returncode, refused.stderr) == (
            2,
            f"error: {short!r} is no ref: a ref, or the start of one, is 6 to 64 hex digits\n",
        )
    # A record prints its text as it is: a degree sign, not its JSON escape.
    cat = p2e("artifact", "cat", answers[0]["ref"], env=cli_env)
    assert "In Paris it is 15°C" in json.loads(cat.stdout)["text"]
    assert "15°C" in cat.stdout and "\\u00b0" not in cat.stdout


def test_branch_branches_and_replay_as_a_user_runs_them(cli_env: dict[str, str]) -> None:
    name = f"cli-src-{uuid.uuid4().hex[:8]}"
    done = p2e("run", "--id", name, "delegate to agent_beta: the weather in Paris", env=cli_env)
    assert done.returncode == 0, done.stderr

    branched = p2e("conversation", "branch", name, "--at", "2", "--json", env=cli_env)
    assert branched.returncode == 0, branched.stderr
    started = json.loads(branched.stdout)
    assert started == {
        "id": f"conv-{name}~b1",
        "source": f"conv-{name}",
        "step": 2,
        "as_child": False,
    }
    again = p2e(
        "conversation", "branch", f"conv-{name}~b1", "--at", "3", "-m", "thanks!", env=cli_env
    )
    assert again.returncode == 0, again.stderr
    assert f"conv-{name}~b1~b1: a branch of conv-{name}~b1 at step 3" in again.stdout

    for _ in range(50):  # visibility lists a branch a moment after it starts
        shown = p2e("conversation", "branches", name, "--json", env=cli_env)
        tree = [(row["id"], row["depth"], row["step"]) for row in json.loads(shown.stdout)]
        if len(tree) == 2:
            break
    assert tree == [(f"conv-{name}~b1", 1, 2), (f"conv-{name}~b1~b1", 2, 3)]
    # A branch's show names what it was branched from; its source's says nothing of it.
    origin = json.loads(p2e("conversation", "show", f"{name}~b1~b1", "--json", env=cli_env).stdout)
    assert origin["branch_of"] == {"source": f"conv-{name}~b1", "step": 3}
    shown_branch = p2e("conversation", "show", f"{name}~b1~b1", env=cli_env).stdout
    assert f"· branch of conv-{name}~b1 after step 3" in shown_branch
    assert (
        json.loads(p2e("conversation", "show", name, "--json", env=cli_env).stdout)["branch_of"]
        is None
    )

    replayed = p2e("replay", name, "--step", "2", env=cli_env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"conv-{name}: replays with this code" in replayed.stdout
    assert "state AgentResult at step 2" in replayed.stdout
    queried = p2e("replay", "--query", f"WorkflowId = 'conv-{name}'", "--json", env=cli_env)
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout) == [
        {"workflow_id": f"conv-{name}", "replays": True, "event_id": None, "problem": None}
    ]

    never = p2e("conversation", "branch", name, "--at", "40", env=cli_env)
    assert (never.returncode, never.stderr.count("\n")) == (2, 1)
    assert "step 40 was never reached (steps 1 to 3)" in never.stderr
    unknown = p2e("replay", "conv-nope", env=cli_env)
    assert (unknown.returncode, unknown.stderr) == (2, "error: no conversation 'conv-nope'\n")


def test_rewind_then_chat_continues_the_branch_and_watch_ends_with_it(
    cli_env: dict[str, str],
) -> None:
    name = f"cli-rw-{uuid.uuid4().hex[:8]}"
    chat = subprocess.run(
        [P2E, "chat", "agent_alpha", "-c", name], input="weather in Paris\n/exit\n",
        env=cli_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr

    rewound = p2e("conversation", "rewind", name, "3", "-m", "and in Rome?", env=cli_env)
    assert rewound.returncode == 0, rewound.stderr
    branch = f"conv-{name}~b1"
    assert f"{branch} is its active branch" in rewound.stdout

    watcher = subprocess.Popen(
        [P2E, "conversation", "watch", branch, "--interval", "0.2"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    again = subprocess.run(
        [P2E, "chat", "agent_alpha", "-c", name], input="/end\n",
        env=cli_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"continuing the active branch of {name}: {branch}" in again.stderr
    assert f"{branch} ended" in again.stderr
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "and in Rome?" in out and "Finished" in out

    # The tree marks the branch `chat -c` continues, until a checkout moves it back.
    listed = json.loads(p2e("conversation", "branches", name, "--json", env=cli_env).stdout)
    assert [(row["id"], row["active"]) for row in listed] == [(branch, True)]
    table = p2e("conversation", "branches", name, env=cli_env).stdout
    assert f"▸ {branch}" in table and f"▸ active: {branch}" in table
    back = p2e("conversation", "checkout", name, name, env=cli_env)
    assert back.returncode == 0, back.stderr
    table = p2e("conversation", "branches", name, env=cli_env).stdout
    assert f"▸ {branch}" not in table and f"▸ active: conv-{name}" in table
    source = p2e("conversation", "show", name, "--json", env=cli_env)
    assert "and in Rome?" not in source.stdout  # the source never changed
    unknown = p2e("conversation", "checkout", name, "conv-nope", env=cli_env)
    assert (unknown.returncode, unknown.stderr.strip().splitlines()[-1]) == (
        2, "error: no conversation 'conv-nope'"
    )  # fmt: skip


def test_watch_waits_for_a_worker_and_ends_with_the_conversation(cli_env: dict[str, str]) -> None:
    name = f"cli-wait-{uuid.uuid4().hex[:8]}"
    started = p2e("run", "--detach", "--id", name, "weather in Paris?", env=cli_env)
    assert started.returncode == 0, started.stderr
    watcher = subprocess.Popen(
        [P2E, "conversation", "watch", name, "--interval", "0.2"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            watcher.wait(timeout=8)  # no worker yet: it waits, and does not give up
        worker = subprocess.Popen([P2E, "worker"], env=cli_env, stderr=subprocess.DEVNULL)
        try:
            out, err = watcher.communicate(timeout=90)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "completed" in out and "Finished" in out  # the final view (stdout is no terminal)


def test_conversation_list_is_newest_first_and_filters(cli_env: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    for n in range(3):
        done = p2e("run", "--id", f"list-{tag}-{n}", "delegate to agent_beta: hi", env=cli_env)
        assert done.returncode == 0, done.stderr
    ran = p2e("run", "--agent", "agent_beta", "--id", f"list-{tag}-beta", "hi", env=cli_env)
    assert ran.returncode == 0, ran.stderr

    def listed(*args: str) -> list[dict[str, Any]]:
        done = p2e("conversation", "list", "--json", "-n", "1000", *args, env=cli_env)
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    rows = listed()
    started = [row["started"] for row in rows]
    assert started == sorted(started, reverse=True)  # newest first, running or not
    mine = [row["id"] for row in rows if tag in row["id"]]
    assert mine == [f"conv-list-{tag}-beta", *(f"conv-list-{tag}-{n}" for n in (2, 1, 0))]
    assert not any("/" in row["id"] for row in rows)  # no delegated child, no rollout arm

    every = [row["id"] for row in listed("--all") if tag in row["id"]]
    assert f"conv-list-{tag}-0/d2-agent_beta" in every and len(every) == 7
    beta = [row["id"] for row in listed("--agent", "agent_beta") if tag in row["id"]]
    assert beta == [f"conv-list-{tag}-beta"]
    assert [r for r in listed("--status", "running") if tag in r["id"]] == []
    assert {r["status"] for r in listed("--status", "completed")} == {"completed"}
    newest = listed("-n", "2")
    assert [r["id"] for r in newest] == [r["id"] for r in rows[:2]]


def test_retried_model_calls_are_one_line_each_on_stderr(cli_env: dict[str, str]) -> None:
    done = p2e("run", "--id", f"cli-retries-{uuid.uuid4().hex[:8]}", "simulate error 500",
               env=cli_env)  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    attempts = [line for line in done.stderr.splitlines() if "llm_step attempt" in line]
    assert [line.split(" failed:")[0].strip() for line in attempts] == [
        f"llm_step attempt {n}" for n in range(1, 6)
    ]
    assert all("simulated HTTP 500" in line for line in attempts)
    assert "attempt" not in done.stdout and "WARN" not in done.stdout
