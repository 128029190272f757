"""The scripts in examples/ run as a user runs them, against the session's server, so the
README's Python section never shows code that no longer works."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(script), *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_the_conversation_example_prints_the_stack_of_its_finished_conversation(
    cli_env: dict[str, str],
) -> None:
    out = run_example(EXAMPLES / "conversation.py", "weather in Oslo", env=cli_env).stdout

    assert re.search(r"^started conv-agent_alpha-\d{8}-\d{6}-[0-9a-f]{8}$", out, re.M), out
    assert "finished: done after 3 steps" in out
    kinds = [line.split()[1] for line in out.splitlines() if re.match(r"^\s+\d+  ", line)]
    assert kinds == ["UserMessage", "ToolCall", "ToolResult", "AssistantMessage", "Finished"]
    assert 'get_weather({"city": "Oslo"})' in out


def test_a_tool_from_an_installed_plugin_package_serves_the_agents_of_its_agents_yml(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Built from a copy: a build leaves metadata in its source folder, which would then
    # register the plugin for any script that runs from there.
    source = shutil.copytree(EXAMPLES / "plugin_tool", tmp_path / "plugin_tool")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {**cli_env, "PYTHONPATH": str(site)}

    out = run_example(EXAMPLES / "plugin_tool" / "run.py", "100", env=env).stdout

    assert 'ToolCall   convert_temperature({"celsius": 100.0})' in out
    assert 'ToolResult {"celsius": 100.0, "fahrenheit": 212.0}' in out
    assert out.rstrip().endswith('"fahrenheit": 212.0}')


def test_without_the_plugin_installed_its_agents_yml_is_refused_naming_the_tool(
    cli_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "plugin_tool" / "run.py")],
        env=cli_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert "agent 'thermometer' lists unknown tool 'convert_temperature'" in done.stderr


def test_the_rollout_example_prints_each_variant_against_the_baseline(
    cli_env: dict[str, str],
) -> None:
    out = run_example(EXAMPLES / "rollout.py", env=cli_env).stdout

    assert re.search(r"^started rollout-\S+: 12 arms$", out, re.M), out
    assert "score by variant, against desk/with_tools:" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  desk/")}
    assert "done 6/6" in rows["desk/with_tools"]
    assert "difference" not in rows["desk/with_tools"]
    # Six pairs, every one worse without tools: the exact two-sided Wilcoxon p is 2/64.
    assert "done 6/6" in rows["desk/without_tools"]
    assert re.search(r"difference -0\.\d{3} \(Holm p 0\.031\)", rows["desk/without_tools"])
    assert out.rstrip().endswith("best: desk/with_tools")
