"""The agents file loader (agents/registry.py) and the agent spec (agents/spec.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.agents.registry import AgentRegistry
from p2engine.contract.agent import AgentSpec
from p2engine.contract.errors import ConfigError, UnknownAgent
from p2engine.runtime.settings import PROJECT_ROOT

PROJECT_AGENTS = PROJECT_ROOT / "config" / "agents.yml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agents.yml"
    path.write_text(text)
    return path


def test_project_agents_file_loads_agent_alpha() -> None:
    registry = AgentRegistry.load(PROJECT_AGENTS)
    alpha = registry.get("agent_alpha")
    assert isinstance(alpha, AgentSpec)
    assert alpha.id == "agent_alpha"
    assert alpha.tools == [
        "get_weather", "delegate", "check_balance", "transfer_funds", "reward_agent",
    ]  # fmt: skip
    assert "agent_alpha" in registry.ids
    assert [a.id for a in registry.all()] == registry.ids


def test_unknown_agent_lists_the_known_ones() -> None:
    registry = AgentRegistry.load(PROJECT_AGENTS)
    with pytest.raises(UnknownAgent) as info:
        registry.get("nosuch")
    message = str(info.value)
    assert "nosuch" in message
    for agent_id in registry.ids:
        assert agent_id in message
    assert isinstance(info.value, ConfigError)


def test_unknown_key_on_an_agent_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "agents:\n  - id: a1\n    colour: red\n")
    with pytest.raises(ConfigError) as info:
        AgentRegistry.load(path)
    assert str(path) in str(info.value)
    assert "colour" in str(info.value)


def test_unknown_top_level_key_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "agents: []\nextra: 1\n")
    with pytest.raises(ConfigError, match="extra"):
        AgentRegistry.load(path)


def test_unknown_key_in_limits_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "agents:\n  - id: a1\n    limits:\n      max_stepz: 3\n")
    with pytest.raises(ConfigError, match="max_stepz"):
        AgentRegistry.load(path)


def test_duplicate_id_raises(tmp_path: Path) -> None:
    path = write(tmp_path, "agents:\n  - id: twin\n  - id: twin\n")
    with pytest.raises(ConfigError, match="twin") as info:
        AgentRegistry.load(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        AgentRegistry.load(missing)
    assert str(missing) in str(info.value)


def test_malformed_yaml_raises(tmp_path: Path) -> None:
    path = write(tmp_path, "agents: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        AgentRegistry.load(path)


def test_invalid_agent_id_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "agents:\n  - id: 'has space'\n")
    with pytest.raises(ConfigError, match="id"):
        AgentRegistry.load(path)


def test_spec_defaults() -> None:
    spec = AgentSpec(id="a1")
    assert spec.type == "llm"
    assert spec.model is None
    assert spec.tools == []
    assert spec.limits.max_steps == 20


def test_empty_agents_file_says_no_agents_are_defined(tmp_path: Path) -> None:
    path = tmp_path / "agents.yml"
    path.write_text("")
    with pytest.raises(ConfigError, match="no agents defined"):
        AgentRegistry.load(path)


def test_agents_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read agents file"):
        AgentRegistry.load(tmp_path)
