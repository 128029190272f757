"""The built wheel on its own: one top-level package, `p2engine`, that lives beside the
OpenAI Agents SDK (whose import name is `agents`) in one environment, and runs a
conversation from its packaged configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the sources: a build writes build/ and *.egg-info where it runs.
    source = shutil.copytree(
        ROOT,
        tmp_path_factory.mktemp("source") / "p2engine",
        ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "daml"),
    )
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (found,) = dist.glob("p2engine-*.whl")
    return found


@pytest.fixture(scope="module")
def beside_openai_agents(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and `openai-agents`; its bin directory."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", str(wheel), "openai-agents"],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return bin_dir


def test_the_wheel_holds_one_top_level_package_with_its_configuration(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"p2engine", wheel.name.split("-py3")[0] + ".dist-info"}
    for packaged in (
        "p2engine/__init__.py",
        "p2engine/py.typed",
        "p2engine/agents/tools/registry.py",
        "p2engine/config/p2e.yaml",
        "p2engine/config/agents.yml",
        "p2engine/config/personas/weather_expert.md",
        "p2engine/config/rollouts/demo.yml",
        "p2engine/config/rubrics/helpful.md",
        "p2engine/deploy/temporal-dev.yaml",
    ):
        assert packaged in names
    assert not [n for n in names if n.startswith(("p2engine/tests/", "p2engine/bench/"))]


def test_p2engine_and_the_openai_agents_sdk_import_in_one_process(
    beside_openai_agents: Path, tmp_path: Path
) -> None:
    probe = (
        "import agents, p2engine, p2engine.agents\n"
        "from agents import Agent, Runner\n"
        "from p2engine import ConversationClient, tool\n"
        "print(agents.__file__)\n"
        "print(p2engine.agents.__file__)\n"
    )
    done = subprocess.run(
        [str(beside_openai_agents / "python"), "-c", probe],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    sdk, ours = done.stdout.split()
    assert sdk.endswith("site-packages/agents/__init__.py")
    assert ours.endswith("site-packages/p2engine/agents/__init__.py")


def test_p2e_from_that_environment_shows_help_and_runs_a_conversation(
    beside_openai_agents: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    p2e = str(beside_openai_agents / "p2e")
    shown = subprocess.run(
        [p2e, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "Usage: p2e" in shown.stdout

    ran = subprocess.run(
        [p2e, "run", "--agent", "agent_alpha", "weather in Paris?"],
        cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "In Paris it is 15°C" in ran.stdout
