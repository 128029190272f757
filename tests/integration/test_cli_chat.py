"""`p2e chat`, `p2e chat --as` and `p2e config` as a user runs them, input piped on stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

P2E = str(Path(sys.executable).parent / "p2e")


def p2e(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [P2E, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def shown(conversation: str, env: dict[str, str]) -> dict[str, Any]:
    done = p2e("conversation", "show", conversation, "--json", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_run_delegates_and_the_stack_shows_the_hand_off(cli_env: dict[str, str]) -> None:
    done = p2e("run", "--agent", "agent_alpha", "--id", "cli-d1",
               "Delegate to agent_helper: what's the weather in Tokyo?", env=cli_env)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "agent_helper says: In Tokyo it is 18°C" in done.stdout
    assert "AgentCall: -> agent_helper" in done.stderr
    data = shown("conv-cli-d1", cli_env)
    assert [e["kind"] for e in data["stack"]] == [
        "UserMessage", "AgentCall", "AgentResult", "AssistantMessage", "Finished",
    ]  # fmt: skip
    assert data["stack"][2]["child_id"] == "conv-cli-d1/d2-agent_helper"


def test_piped_chat_answers_each_line_and_shows_tool_calls(cli_env: dict[str, str]) -> None:
    done = p2e("chat", "agent_alpha", "-c", "cli-chat", env=cli_env,
               stdin="weather in Paris\n/stack\nwhat is 2+3\n/end\n")  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "agent_alpha> In Paris it is 15°C" in done.stdout
    assert "agent_alpha> 2+3 = 5." in done.stdout
    assert "ToolCall: get_weather" in done.stderr
    assert "conv-cli-chat ended" in done.stderr
    data = shown("conv-cli-chat", cli_env)
    assert data["reason"] == "done"
    assert [e["preview"] for e in data["stack"] if e["kind"] == "UserMessage"] == [
        "weather in Paris", "what is 2+3",
    ]  # fmt: skip


def test_exit_leaves_the_chat_open_and_it_can_be_resumed(cli_env: dict[str, str]) -> None:
    first = p2e("chat", "agent_beta", "-c", "cli-resume", env=cli_env, stdin="hello\n/exit\n")
    assert first.returncode == 0, first.stderr
    assert "stays open" in first.stderr

    again = p2e("chat", "agent_beta", "-c", "cli-resume", env=cli_env, stdin="hi again\n/end\n")
    assert again.returncode == 0, again.stderr
    assert "attached to conv-cli-resume" in again.stderr
    data = shown("conv-cli-resume", cli_env)
    assert [e["preview"] for e in data["stack"] if e["kind"] == "UserMessage"] == [
        "hello", "hi again",
    ]  # fmt: skip


def test_chat_refuses_a_conversation_of_another_agent(cli_env: dict[str, str]) -> None:
    p2e("chat", "agent_beta", "-c", "cli-other", env=cli_env, stdin="/exit\n")

    done = p2e("chat", "agent_alpha", "-c", "cli-other", env=cli_env, stdin="hello\n")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: conv-cli-other is a conversation with agent_beta, not agent_alpha"
    )


def test_a_person_answers_for_a_human_agent_with_chat_as(cli_env: dict[str, str]) -> None:
    started = p2e("run", "--detach", "--id", "cli-human", "delegate to reviewer: ship it?",
                  env=cli_env)  # fmt: skip
    assert started.returncode == 0, started.stderr

    answered = p2e("chat", "--as", "reviewer", "conv-cli-human", env=cli_env,
                   stdin="Yes, after the changelog.\n")  # fmt: skip

    assert answered.returncode == 0, answered.stderr
    assert "[conv-cli-human/d2-reviewer] ship it?" in answered.stdout
    assert "answered in conv-cli-human/d2-reviewer" in answered.stderr
    result = p2e("run", "--id", "cli-human", "ignored", env=cli_env)
    assert "reviewer says: Yes, after the changelog." in result.stdout


def test_chat_as_a_non_human_agent_is_refused(cli_env: dict[str, str]) -> None:
    done = p2e("chat", "--as", "agent_alpha", "conv-anything", env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: agent_alpha is a llm agent; --as answers for human agents"
    )


def test_config_overrides_apply_from_the_next_step(cli_env: dict[str, str]) -> None:
    p2e("chat", "agent_alpha", "-c", "cli-config", env=cli_env, stdin="/exit\n")

    model = p2e("config", "set-model", "cli-config", "scripted/other", env=cli_env)
    assert model.returncode == 0, model.stderr
    assert "model: scripted/other" in model.stdout
    refused = p2e("config", "set-tools", "cli-config", "get_weather,nope", env=cli_env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: refused: unknown tool 'nope'; registered tools: check_balance, delegate, "
        "get_weather, reward_agent, transaction_history, transfer_funds"
    )
    persona = p2e("config", "set-behavior", "cli-config", "critic", env=cli_env)
    assert persona.returncode == 0, persona.stderr
    overrides = json.loads(p2e("config", "show-overrides", "cli-config", "--json",
                               env=cli_env).stdout)  # fmt: skip
    assert overrides == {
        "conversation_id": "conv-cli-config", "persona": "critic", "tools": None,
        "model": "scripted/other", "system_prompt": None, "temperature": None,
    }  # fmt: skip

    p2e("chat", "agent_alpha", "-c", "cli-config", env=cli_env, stdin="weather in Rome\n/end\n")

    data = shown("cli-config", cli_env)
    stepped = [e for e in data["stack"] if e["kind"] in ("ToolCall", "AssistantMessage")]
    assert stepped
    assert all(e["overrides"]["model"] == "scripted/other" for e in stepped)
    late = p2e("config", "set-model", "cli-config", "scripted/late", env=cli_env)
    assert late.returncode == 2
    assert "not running" in late.stderr


def test_a_chat_whose_model_step_fails_says_why_and_exits_1(cli_env: dict[str, str]) -> None:
    done = p2e("chat", "agent_alpha", "-c", "cli-chat-401", env=cli_env,
               stdin="simulate error 401\n")  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "agent_alpha>" not in done.stdout  # no empty reply
    line = next(x for x in done.stderr.splitlines() if "conv-cli-chat-401 finished" in x)
    assert line.startswith("conv-cli-chat-401 finished: error: ") and "401" in line


@pytest.mark.parametrize(
    ("name", "args", "waiting"),
    [
        ("cli-human-direct", ["--agent", "reviewer", "may we ship?"], ""),
        ("cli-human-delegated", ["delegate to reviewer: may we ship?"], "/d2-reviewer: "),
    ],
)
def test_run_with_a_human_agent_says_who_must_answer_and_how(
    cli_env: dict[str, str], name: str, args: list[str], waiting: str
) -> None:
    # Two terminals, no standing worker: `run` and `chat --as` each run a worker of their own,
    # and `run` exits (its worker with it) as soon as the answer ends the conversation. A
    # human agent the conversation delegated to is named too, with the child that waits.
    run = subprocess.Popen([P2E, "run", "--id", name, *args],
                           env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    hint = f"nothing moves until reviewer answers: p2e chat --as reviewer conv-{name}"
    if waiting:
        hint = f"conv-{name}{waiting}{hint}"
    seen = []
    assert run.stderr is not None
    for line in run.stderr:
        seen.append(line)
        if hint in line:
            break
    assert any(hint in line for line in seen), "".join(seen)

    answered = p2e("chat", "--as", "reviewer", f"conv-{name}", env=cli_env, stdin="Ship it.\n")
    out, _ = run.communicate(timeout=120)
    assert answered.returncode == 0, answered.stderr
    assert f"answered in conv-{name}{waiting.removesuffix(': ')}" in answered.stderr
    assert run.returncode == 0 and (waiting or "Ship it." in out), out


def test_run_detached_without_a_worker_says_nothing_runs_yet(cli_env: dict[str, str]) -> None:
    done = p2e("run", "-d", "--id", "cli-detached-alone", "weather in Paris", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "conv-cli-detached-alone"
    queue = cli_env["P2E_TASK_QUEUE"]
    assert f"no worker serves task queue '{queue}' yet: nothing runs until one does" in done.stderr
