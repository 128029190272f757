"""deploy/: the compose stack parses and names what p2e reads, and every `p2e` command the
guide shows exists with the options it uses (the images themselves cannot be pulled here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from p2engine.cli.main import command
from p2engine.runtime.settings import ENV_VARS
from p2engine.runtime.temporal_server import DevServerConfig

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
GUIDE = (DEPLOY / "README.md").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
DEV = DevServerConfig.model_validate(yaml.safe_load((DEPLOY / "temporal-dev.yaml").read_text()))
PROVIDER_KEYS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}


def test_the_stack_has_temporal_its_ui_the_database_and_workers() -> None:
    services = COMPOSE["services"]
    assert set(services) == {
        "postgres", "temporal", "search-attributes", "temporal-ui", "ledger-init", "worker"
    }  # fmt: skip
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["worker"]["command"] == ["worker"]
    assert services["ledger-init"]["command"] == ["ledger", "init"]
    assert services["worker"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_the_workers_read_only_settings_p2e_knows_and_share_temporal_and_the_database() -> None:
    env = COMPOSE["services"]["worker"]["environment"]
    assert set(env) - PROVIDER_KEYS <= set(ENV_VARS)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["P2E_DATABASE_URL"].startswith("postgresql://p2e:")
    assert env["P2E_DATABASE_URL"].endswith("@postgres:5432/p2e")
    assert "CREATE DATABASE p2e;" in (DEPLOY / "postgres-init.sql").read_text()


def registered(text: str) -> dict[str, str]:
    return dict(re.findall(r"(P2e\w+):(\w+)", text))


def test_the_stack_and_the_guide_register_the_dev_servers_search_attributes() -> None:
    command_text = " ".join(COMPOSE["services"]["search-attributes"]["command"])
    assert registered(command_text) == DEV.search_attributes
    assert registered(GUIDE) == DEV.search_attributes


def guide_commands() -> list[list[str]]:
    """Every `p2e ...` line in the guide's code blocks, as its words."""
    blocks = re.findall(r"^ *```bash\n(.*?)^ *```", GUIDE, re.S | re.M)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("p2e ")]


def test_the_guide_shows_commands() -> None:
    assert len(guide_commands()) >= 8


@pytest.mark.parametrize("words", guide_commands(), ids=lambda w: " ".join(w))
def test_every_command_in_the_guide_exists_with_its_options(words: list[str]) -> None:
    cmd: Any = command()
    rest = list(words)
    while rest and rest[0] in getattr(cmd, "commands", {}):
        cmd = cmd.commands[rest.pop(0)]
    assert not getattr(cmd, "commands", None), f"p2e {' '.join(words)} names no command"
    options = {name for param in cmd.params for name in getattr(param, "opts", [])}
    used = {word for word in rest if word.startswith("-")}
    assert used <= options, f"p2e {' '.join(words)}: unknown {used - options}"
    values = {p.name: p for p in cmd.params}
    if "only" in values:
        choices = {"workflows", "models", "tools"}
        assert {w for w in rest if not w.startswith("-")} <= choices


def test_the_guides_variables_are_the_ones_p2e_reads() -> None:
    table = re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|", GUIDE, re.M)
    named = {name for row in table for name in row if name}
    assert named and named <= set(ENV_VARS)
