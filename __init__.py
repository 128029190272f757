"""P2Engine: durable, observable multi-agent LLM conversations on Temporal.

The names in `__all__` are the public Python API; every other module under `p2engine` is
internal and may change between releases. The names are loaded on first use, so that
`import p2engine` stays cheap (no Temporal client, no litellm) for a plugin that only
registers a tool or an evaluator.

    from p2engine import ConversationClient, running_worker, load_settings

    settings = load_settings()
    async with running_worker(settings):
        conversations = ConversationClient(settings)
        inp = conversations.build_input("agent_alpha", "What's the weather in Paris?")
        handle, _ = await conversations.start(inp)
        result = await conversations.result(handle)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2engine.agents.tools.registry import ToolContext, ToolError, tool
    from p2engine.contract.agent import AgentEval, AgentLimits, AgentSpec, Rule
    from p2engine.contract.errors import (
        ConfigError,
        ConversationNotFound,
        InvalidInput,
        P2eError,
        TemporalUnavailable,
    )
    from p2engine.contract.evals import Score
    from p2engine.contract.models import ConversationResult, StackEntry
    from p2engine.contract.rollouts import RolloutResult, VariantComparison, VariantStats
    from p2engine.evals.registry import EvalTarget, EvaluationError, PairTarget, evaluator, pairwise
    from p2engine.runtime.conversations import ConversationClient, ConversationHandle
    from p2engine.runtime.rollouts import RolloutClient, RolloutHandle, RolloutNotFound
    from p2engine.runtime.script import run_script
    from p2engine.runtime.settings import Settings, load_settings
    from p2engine.runtime.worker import run_worker, running_worker

# Public name -> the internal module that defines it.
_EXPORTS: dict[str, str] = {
    # Tools: `@tool` registers a function the agents of agents.yml may call.
    "tool": "p2engine.agents.tools.registry",
    "ToolContext": "p2engine.agents.tools.registry",
    "ToolError": "p2engine.agents.tools.registry",
    # Evaluators: `@evaluator` scores one step, `@pairwise` compares two answers.
    "evaluator": "p2engine.evals.registry",
    "pairwise": "p2engine.evals.registry",
    "EvalTarget": "p2engine.evals.registry",
    "PairTarget": "p2engine.evals.registry",
    "EvaluationError": "p2engine.evals.registry",
    "Score": "p2engine.contract.evals",
    # Agents, as agents.yml spells them.
    "AgentSpec": "p2engine.contract.agent",
    "AgentLimits": "p2engine.contract.agent",
    "AgentEval": "p2engine.contract.agent",
    "Rule": "p2engine.contract.agent",
    # Settings: the settings file, P2E_* variables and overrides, merged.
    "Settings": "p2engine.runtime.settings",
    "load_settings": "p2engine.runtime.settings",
    # Conversations.
    "ConversationClient": "p2engine.runtime.conversations",
    "ConversationHandle": "p2engine.runtime.conversations",
    "ConversationResult": "p2engine.contract.models",
    "StackEntry": "p2engine.contract.models",
    # Rollouts.
    "RolloutClient": "p2engine.runtime.rollouts",
    "RolloutHandle": "p2engine.runtime.rollouts",
    "RolloutResult": "p2engine.contract.rollouts",
    "VariantComparison": "p2engine.contract.rollouts",
    "VariantStats": "p2engine.contract.rollouts",
    # Workers: serve conversations with this process's own tools and evaluators.
    "running_worker": "p2engine.runtime.worker",
    "run_script": "p2engine.runtime.script",
    "run_worker": "p2engine.runtime.worker",
    # Errors a caller can act on; each carries a one-line message.
    "P2eError": "p2engine.contract.errors",
    "ConfigError": "p2engine.contract.errors",
    "InvalidInput": "p2engine.contract.errors",
    "ConversationNotFound": "p2engine.contract.errors",
    "RolloutNotFound": "p2engine.runtime.rollouts",
    "TemporalUnavailable": "p2engine.contract.errors",
}

__all__ = [
    "AgentEval",
    "AgentLimits",
    "AgentSpec",
    "ConfigError",
    "ConversationClient",
    "ConversationHandle",
    "ConversationNotFound",
    "ConversationResult",
    "EvalTarget",
    "EvaluationError",
    "InvalidInput",
    "P2eError",
    "PairTarget",
    "RolloutClient",
    "RolloutHandle",
    "RolloutNotFound",
    "RolloutResult",
    "Rule",
    "Score",
    "Settings",
    "StackEntry",
    "TemporalUnavailable",
    "ToolContext",
    "ToolError",
    "VariantComparison",
    "VariantStats",
    "evaluator",
    "load_settings",
    "pairwise",
    "run_script",
    "run_worker",
    "running_worker",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'p2engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
