"""Why an update may not be taken now: pure functions of the conversation's state, one per
update, so the workflow's validators only raise what these return (tested without Temporal).
"""

from __future__ import annotations

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import NO_PERSONA
from p2engine.contract.inputs import message_problem
from p2engine.contract.models import Catalog, ConversationState, Release, WaitingFor
from p2engine.contract.states import State
from p2engine.workflows.fsm import TERMINAL
from p2engine.workflows.propagation import release_problem as barrier_problem

STILL_ANSWERING = "the agent is still answering the previous message"


def waiting_for(s: ConversationState, who: WaitingFor) -> bool:
    return s.state is State.WAITING and s.waiting_for == who


def open_problem(s: ConversationState) -> str | None:
    return "the conversation has finished" if s.state in TERMINAL else None


def _waiting_problem(s: ConversationState, who: WaitingFor, otherwise: str) -> str | None:
    return open_problem(s) or (None if waiting_for(s, who) else otherwise)


def send_message_problem(s: ConversationState, interactive: bool, text: str) -> str | None:
    """A user message is taken by an interactive conversation that waits for its user."""
    if problem := message_problem(text):
        return problem
    if not interactive:
        return "this conversation is one-shot; start an interactive one (p2e chat)"
    return _waiting_problem(s, "user", STILL_ANSWERING) or (STILL_ANSWERING if s.inbox else None)


def answer_problem(
    s: ConversationState, agent: AgentSpec, text: str, answer_pending: bool
) -> str | None:
    """A person's answer is taken when it is the human agent's turn and none is on its way."""
    if problem := message_problem(text, "answer"):
        return problem
    if problem := _waiting_problem(s, "human", f"it is not {agent.id}'s turn to answer"):
        return problem
    return "an answer is already being delivered" if answer_pending else None


def end_problem(s: ConversationState) -> str | None:
    return _waiting_problem(s, "user", "only a conversation waiting for its user can be ended")


def behavior_problem(s: ConversationState, catalog: Catalog, persona: str | None) -> str | None:
    return open_problem(s) or persona_problem(catalog, persona)


def tools_problem(s: ConversationState, catalog: Catalog, tools: list[str] | None) -> str | None:
    return open_problem(s) or unknown_tool_problem(catalog, tools)


def model_problem(s: ConversationState, agent: AgentSpec, model: str | None) -> str | None:
    return open_problem(s) or model_name_problem(agent, model)


def release_problem(
    s: ConversationState, catalog: Catalog, agent: AgentSpec, release: Release
) -> str | None:
    push = release.push
    tools = list(push.tools) if push is not None and push.tools is not None else None
    model = push.model if push is not None else None
    return (
        open_problem(s)
        or barrier_problem(s, release)
        or unknown_tool_problem(catalog, tools)
        or model_name_problem(agent, model)
    )


# What is wrong with an override's value, whatever the conversation's state (a branch of a
# finished conversation takes them too).


def persona_problem(catalog: Catalog, persona: str | None) -> str | None:
    known = catalog.personas
    if persona is not None and persona != NO_PERSONA and persona not in known:
        return f"unknown persona '{persona}'; known: {', '.join(known) or 'none'}"
    return None


def unknown_tool_problem(catalog: Catalog, tools: list[str] | None) -> str | None:
    known = [t.name for t in catalog.tools]
    unknown = [name for name in tools or [] if name not in known]
    if unknown:
        return f"unknown tool '{unknown[0]}'; registered tools: {', '.join(known)}"
    return None


def model_name_problem(agent: AgentSpec, model: str | None) -> str | None:
    if model is not None and not model.strip():
        return "the model name is empty"
    if model is not None and agent.type != "llm":
        return f"{agent.id} is a {agent.type} agent and uses no model"
    return None
