"""Persona templates (agents/personas.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.agents.personas import PersonaLibrary
from p2engine.contract.errors import ConfigError
from p2engine.runtime.settings import PROJECT_ROOT

SHIPPED = PersonaLibrary(PROJECT_ROOT / "config" / "personas")


def library(tmp_path: Path, **templates: str) -> PersonaLibrary:
    for name, text in templates.items():
        (tmp_path / f"{name}.md").write_text(text)
    return PersonaLibrary(tmp_path)


def test_names_lists_the_shipped_personas() -> None:
    names = SHIPPED.names()
    assert {"weather_expert", "financial_expert", "critic"} <= set(names)
    assert names == sorted(names)


def test_shipped_personas_pass_the_check_and_give_their_texts() -> None:
    texts = SHIPPED.texts()
    assert sorted(texts) == SHIPPED.names()
    assert texts["critic"] == (SHIPPED.directory / "critic.md").read_text(encoding="utf-8")


def test_names_ignores_other_files_and_the_none_persona(tmp_path: Path) -> None:
    lib = library(tmp_path, b="B", a="A", none="reserved")
    (tmp_path / "notes.txt").write_text("not a persona")
    assert lib.names() == ["a", "b"]


def test_names_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert PersonaLibrary(tmp_path / "missing").names() == []


def test_render_substitutes_agent_id_and_tools() -> None:
    text = SHIPPED.render(
        "weather_expert",
        agent_id="agent_helper",
        description="weather",
        tools=["get_weather", "delegate"],
    )
    assert "You are agent_helper." in text
    assert "Tools you can use: get_weather, delegate." in text
    assert "$" not in text


def test_render_says_none_when_there_are_no_tools() -> None:
    text = SHIPPED.render("weather_expert", agent_id="a1", description="", tools=[])
    assert "Tools you can use: none." in text


def test_render_substitutes_the_description(tmp_path: Path) -> None:
    lib = library(tmp_path, p="$agent_id: $description ($tools) costs $$5")
    text = lib.render("p", agent_id="a1", description="Front desk", tools=["get_weather"])
    assert text == "a1: Front desk (get_weather) costs $5"


def test_unknown_persona_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        SHIPPED.render("pirate", agent_id="a1", description="", tools=[])
    message = str(info.value)
    assert "unknown persona 'pirate'" in message
    for name in ("weather_expert", "financial_expert", "critic"):
        assert name in message


def test_check_rejects_an_unknown_placeholder(tmp_path: Path) -> None:
    lib = library(tmp_path, good="You are $agent_id.", bad="You are $agent_id in $city.")
    with pytest.raises(ConfigError) as info:
        lib.texts()
    message = str(info.value)
    assert str(tmp_path / "bad.md") in message
    assert "unknown placeholder $city" in message
    assert "$agent_id" in message  # lists the allowed ones


def test_check_rejects_a_stray_dollar(tmp_path: Path) -> None:
    lib = library(tmp_path, bad="It costs $5.")
    with pytest.raises(ConfigError, match=r"a stray \$"):
        lib.texts()


def test_check_accepts_valid_templates(tmp_path: Path) -> None:
    templates = {"a": "$agent_id", "b": "${tools} and $$ and $description"}
    assert library(tmp_path, **templates).texts() == templates
