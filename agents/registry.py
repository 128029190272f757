"""Loads config/agents.yml. An unknown agent is an error: agents are never made up on the fly."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from p2engine.contract.agent import AgentSpec
from p2engine.contract.errors import ConfigError, UnknownAgent, first_problem, read_config_text


class _AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[AgentSpec]


class AgentRegistry:
    def __init__(self, agents: list[AgentSpec], source: Path) -> None:
        self.source = source
        self._agents: dict[str, AgentSpec] = {}
        for agent in agents:
            if agent.id in self._agents:
                raise ConfigError(f"{source}: agent '{agent.id}' is defined twice")
            self._agents[agent.id] = agent

    @classmethod
    def load(cls, path: Path) -> AgentRegistry:
        text = read_config_text(path, "agents file")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
        if data is None:
            raise ConfigError(f"{path}: no agents defined (expected an 'agents:' list)")
        try:
            parsed = _AgentsFile.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {first_problem(exc)}") from exc
        return cls(parsed.agents, path)

    @property
    def ids(self) -> list[str]:
        return sorted(self._agents)

    def all(self) -> list[AgentSpec]:
        return [self._agents[i] for i in self.ids]

    def get(self, agent_id: str) -> AgentSpec:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise UnknownAgent(
                f"unknown agent '{agent_id}'; known agents: {', '.join(self.ids)}"
            ) from None
