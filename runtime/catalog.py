"""The catalog a conversation starts with: the team from agents.yml, the registered tools,
the personas (with their templates' texts) and the evaluators, checked against each other
once so a workflow never meets a dangling name.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from p2engine.agents.personas import PersonaLibrary
from p2engine.agents.registry import AgentRegistry
from p2engine.agents.tools import get_tool, load_plugins, registered_tools
from p2engine.contract.agent import AgentSpec
from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import EvaluatorInfo
from p2engine.contract.mcp import McpServer, split
from p2engine.contract.models import Catalog, ToolInfo
from p2engine.runtime.settings import Settings
from p2engine.store.base import ArtifactStore
from p2engine.workflows.revisions import CATALOG_BY_REF


def resolve_agent(agent: AgentSpec, settings: Settings) -> AgentSpec:
    """Fill what agents.yml leaves to the settings (the default model)."""
    if agent.model is None and agent.type == "llm":
        return agent.model_copy(update={"model": settings.default_model})
    return agent


def check_agent(agent: AgentSpec, catalog: Catalog, source: Path) -> None:
    known_tools = {t.name for t in catalog.tools}
    where = f"{source}: agent '{agent.id}'"
    for name in agent.tools:
        if name not in known_tools:
            raise ConfigError(
                f"{where} lists unknown tool '{name}'; registered: {', '.join(sorted(known_tools))}"
            )
    for name in sorted(agent.rule_tools() - set(agent.tools)):
        raise ConfigError(f"{where} has a rule calling '{name}', which is not in its tools")
    if agent.persona is not None and agent.persona not in catalog.personas:
        known = ", ".join(catalog.personas) or "none"
        raise ConfigError(f"{where} names unknown persona '{agent.persona}'; known: {known}")
    if agent.eval is not None:
        check_evaluators(agent.eval.evaluators, catalog, f"{where}: eval")
    servers = [s.name for s in catalog.mcp_servers]
    for entry in agent.mcp:
        server, tool = split(entry)
        if server not in servers:
            known = ", ".join(servers) or "none (mcp_servers: in the settings or the agent)"
            raise ConfigError(f"{where} names unknown MCP server '{server}'; servers: {known}")
        if tool is not None and not tool:
            raise ConfigError(f"{where}: '{entry}' names no tool")


def check_evaluators(ids: list[str], catalog: Catalog, where: str) -> None:
    from p2engine.evals.registry import pairwise_misuse

    known = [e.id for e in catalog.evaluators]
    for evaluator_id in ids:
        if evaluator_id not in known:
            problem = pairwise_misuse(evaluator_id) or (
                f"unknown evaluator '{evaluator_id}'; known evaluators: "
                f"{', '.join(known) or 'none'}"
            )
            raise ConfigError(f"{where}: {problem}")


def evaluator_infos(settings: Settings) -> list[EvaluatorInfo]:
    from p2engine.evals.config import load_evaluators
    from p2engine.evals.registry import registered_evaluators

    load_evaluators(settings.evals_file)
    return [
        EvaluatorInfo(id=e.id, version=e.version, trigger=e.trigger, quick=e.quick)
        for e in registered_evaluators()
    ]


def tool_infos() -> list[ToolInfo]:
    load_plugins()
    infos = []
    for name in registered_tools():
        tool = get_tool(name)
        infos.append(
            ToolInfo(
                name=name,
                side_effect_free=tool.side_effect_free,
                timeout_s=tool.timeout_s,
                max_attempts=tool.max_attempts,
            )
        )
    return infos


async def stored_catalog(store: ArtifactStore, catalog: Catalog, revision: int) -> Catalog:
    """`catalog` named by its ref, the whole of it put in `store`, for runs of `revision`
    whose conversations carry a slim copy and read the rest from there (CATALOG_BY_REF);
    unchanged for an older revision."""
    if revision < CATALOG_BY_REF or catalog.ref is not None:
        return catalog
    return catalog.model_copy(update={"ref": await store.put_text(catalog.model_dump_json())})


def load_catalog(settings: Settings) -> Catalog:
    registry = AgentRegistry.load(settings.agents_file)
    persona_texts = PersonaLibrary(settings.personas_dir).texts()
    servers = mcp_servers(settings, registry)
    catalog = Catalog(
        # An agent's own MCP servers stay with the worker: their definitions may hold
        # secrets, and a conversation needs only their names and limits (mcp_servers).
        agents=[resolve_agent(a, settings).model_copy(update={"mcp_servers": {}})
                for a in registry.all()],
        tools=tool_infos(),
        personas=sorted(persona_texts),
        persona_texts=persona_texts,
        dedup=settings.tools.dedup,
        evaluators=evaluator_infos(settings),
        mcp_servers=[server.info(name) for name, server in sorted(servers.items())],
    )  # fmt: skip
    for agent in catalog.agents:
        check_agent(agent, catalog, settings.agents_file)
    check_servers({name: servers[name] for name in used_servers(catalog)})
    return catalog


def mcp_servers(settings: Settings, registry: AgentRegistry | None = None) -> dict[str, McpServer]:
    """Every MCP server a worker may connect to: the settings', and each agent's own; one
    name defined twice alike is one server, twice otherwise is refused."""
    registry = registry or AgentRegistry.load(settings.agents_file)
    servers = dict(settings.mcp_servers)
    for agent in registry.all():
        for name, server in agent.mcp_servers.items():
            if servers.setdefault(name, server) != server:
                raise ConfigError(
                    f"{settings.agents_file}: agent '{agent.id}' defines MCP server '{name}' "
                    "otherwise than it is defined already"
                )
    return servers


def check_servers(servers: Mapping[str, McpServer]) -> None:
    """Refuse a stdio command this machine cannot run before anything starts."""
    for name, server in servers.items():
        if server.command is not None and shutil.which(server.command) is None:
            raise ConfigError(f"MCP server '{name}': no such command '{server.command}'")


def used_servers(catalog: Catalog) -> set[str]:
    return {split(entry)[0] for agent in catalog.agents for entry in agent.mcp}
