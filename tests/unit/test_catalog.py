"""The catalog a conversation starts with (runtime/catalog.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.contract.agent import AgentSpec, Rule
from p2engine.contract.errors import ConfigError
from p2engine.contract.models import Catalog, ToolInfo
from p2engine.runtime.catalog import check_agent, load_catalog, resolve_agent
from p2engine.runtime.settings import Settings

TEAM = {"agent_alpha", "agent_beta", "agent_helper", "treasurer", "child", "reviewer"}
SOURCE = Path("/config/agents.yml")


def agents_file(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "agents.yml"
    path.write_text(text)
    return Settings(agents_file=path)


def small_catalog() -> Catalog:
    return Catalog(
        tools=[ToolInfo(name="get_weather", side_effect_free=True), ToolInfo(name="delegate")],
        personas=["critic", "weather_expert"],
    )


# --- the project's configuration -------------------------------------------------------------


def test_project_catalog_has_the_team() -> None:
    catalog = load_catalog(Settings())
    assert {a.id for a in catalog.agents} == TEAM
    assert len(catalog.agents) == 6


def test_project_catalog_has_the_built_in_tools() -> None:
    catalog = load_catalog(Settings())
    names = {t.name for t in catalog.tools}
    assert {"get_weather", "delegate"} <= names
    weather = catalog.tool("get_weather")
    assert weather.side_effect_free is True
    assert weather.timeout_s > 0
    assert weather.max_attempts >= 1


def test_project_catalog_has_the_personas() -> None:
    catalog = load_catalog(Settings())
    assert {"weather_expert", "financial_expert", "critic"} <= set(catalog.personas)


def test_project_catalog_carries_each_personas_template_text() -> None:
    settings = Settings()
    catalog = load_catalog(settings)
    assert sorted(catalog.persona_texts) == catalog.personas
    shipped = (settings.personas_dir / "weather_expert.md").read_text(encoding="utf-8")
    assert catalog.persona_texts["weather_expert"] == shipped
    assert "$agent_id" in shipped  # the template, unrendered


def test_project_catalog_agent_types() -> None:
    catalog = load_catalog(Settings())
    types = {a.id: a.type for a in catalog.agents}
    assert types["treasurer"] == "rule_based"
    assert types["reviewer"] == "human"
    assert types["agent_alpha"] == "llm"


def test_project_catalog_llm_agents_have_a_model_and_others_none() -> None:
    catalog = load_catalog(Settings(default_model="scripted/other"))
    for agent in catalog.agents:
        if agent.type == "llm":
            assert agent.model is not None, agent.id
        else:
            assert agent.model is None, agent.id


def test_catalog_takes_dedup_from_the_settings() -> None:
    settings = Settings.model_validate({"tools": {"dedup": "strict"}})
    assert load_catalog(settings).dedup == "strict"


# --- filling in the default model ------------------------------------------------------------


def test_resolve_agent_fills_the_default_model_for_llm_agents() -> None:
    resolved = resolve_agent(AgentSpec(id="a1"), Settings(default_model="openai/gpt-x"))
    assert resolved.model == "openai/gpt-x"


def test_resolve_agent_keeps_an_explicit_model() -> None:
    agent = AgentSpec(id="a1", model="anthropic/claude")
    assert resolve_agent(agent, Settings(default_model="openai/gpt-x")).model == "anthropic/claude"


def test_resolve_agent_leaves_rule_based_and_human_agents_without_a_model() -> None:
    settings = Settings(default_model="openai/gpt-x")
    rules = AgentSpec(id="r1", type="rule_based", rules=[Rule(contains="x", reply="y")])
    assert resolve_agent(rules, settings).model is None
    assert resolve_agent(AgentSpec(id="h1", type="human"), settings).model is None


def test_load_catalog_fills_the_default_model(tmp_path: Path) -> None:
    settings = agents_file(tmp_path, "agents:\n  - id: a1\n    tools: [get_weather]\n")
    settings = settings.model_copy(update={"default_model": "openai/gpt-x"})
    catalog = load_catalog(settings)
    agent = catalog.agent("a1")
    assert agent is not None
    assert agent.model == "openai/gpt-x"


# --- checking agents against tools and personas ----------------------------------------------


def test_check_agent_accepts_known_tools_and_persona() -> None:
    agent = AgentSpec(id="a1", tools=["get_weather", "delegate"], persona="critic")
    check_agent(agent, small_catalog(), SOURCE)


def test_check_agent_rejects_an_unknown_tool() -> None:
    agent = AgentSpec(id="a1", tools=["get_weather", "teleport"])
    with pytest.raises(ConfigError) as info:
        check_agent(agent, small_catalog(), SOURCE)
    message = str(info.value)
    assert str(SOURCE) in message
    assert "agent 'a1'" in message
    assert "unknown tool 'teleport'" in message
    assert "get_weather" in message  # the registered ones are listed


def test_check_agent_rejects_an_unknown_persona() -> None:
    agent = AgentSpec(id="a1", persona="pirate")
    with pytest.raises(ConfigError) as info:
        check_agent(agent, small_catalog(), SOURCE)
    message = str(info.value)
    assert str(SOURCE) in message
    assert "agent 'a1'" in message
    assert "unknown persona 'pirate'" in message
    assert "critic, weather_expert" in message


def test_check_agent_rejects_a_rule_tool_missing_from_tools() -> None:
    agent = AgentSpec(
        id="r1",
        type="rule_based",
        tools=["delegate"],
        rules=[Rule(contains="weather", tool="get_weather")],
    )
    with pytest.raises(ConfigError) as info:
        check_agent(agent, small_catalog(), SOURCE)
    message = str(info.value)
    assert str(SOURCE) in message
    assert "agent 'r1'" in message
    assert "'get_weather', which is not in its tools" in message


def test_load_catalog_names_the_file_and_agent_of_an_unknown_tool(tmp_path: Path) -> None:
    settings = agents_file(tmp_path, "agents:\n  - id: a1\n    tools: [teleport]\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(settings)
    message = str(info.value)
    assert str(settings.agents_file) in message
    assert "agent 'a1'" in message
    assert "teleport" in message


def test_load_catalog_rejects_an_unknown_key_naming_it(tmp_path: Path) -> None:
    settings = agents_file(tmp_path, "agents:\n  - id: a1\n    colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(settings)
    message = str(info.value)
    assert "colour" in message
    assert str(settings.agents_file) in message


def test_load_catalog_rejects_a_broken_persona_template(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / "odd.md").write_text("You are $agent_id from $planet.")
    settings = agents_file(tmp_path, "agents:\n  - id: a1\n")
    settings = settings.model_copy(update={"personas_dir": personas})
    with pytest.raises(ConfigError, match=r"unknown placeholder \$planet"):
        load_catalog(settings)
