"""The conversation finite-state machine as data: states, events and the transition table.

Pure Python, no Temporal: the workflow asks `transition()` for every move, so the table here
is the single place that says which moves exist.
"""

from __future__ import annotations

from enum import StrEnum

from p2engine.contract.states import State


class Event(StrEnum):
    MODEL_TEXT = "model_text"  # a model step answered in text
    MODEL_TOOL_CALLS = "model_tool_calls"  # a model step asked for one or more tools
    MODEL_DELEGATE = "model_delegate"  # a model step delegated to another agent
    TOOLS_DONE = "tools_done"  # every tool call of the step ended (ok, error, skipped, timeout)
    CHILD_DONE = "child_done"  # every call of a step that delegated ended
    HUMAN_TURN = "human_turn"  # a human agent's turn: wait for a person to answer
    HUMAN_ANSWERS = "human_answers"  # the person answered through an update
    REPLY_INTERACTIVE = "reply_interactive"  # an interactive conversation waits for its user
    REPLY_ONE_SHOT = "reply_one_shot"  # a one-shot conversation is done after its reply
    USER_SENDS = "user_sends"  # a user message arrives while waiting
    USER_ENDS = "user_ends"  # the user closes an interactive conversation
    LIMIT = "limit"  # a step, budget or time limit ended the conversation


class IllegalTransition(Exception):
    """A move the table does not allow: a bug in the workflow, never a user error."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"no transition from {state} on {event}")
        self.state = state
        self.event = event


# States after which the model runs next.
MODEL_INPUT_STATES = (State.USER_MESSAGE, State.TOOL_RESULT, State.AGENT_RESULT)

TRANSITIONS: dict[tuple[State, Event], State] = {
    **{(s, Event.MODEL_TEXT): State.ASSISTANT_MESSAGE for s in MODEL_INPUT_STATES},
    **{(s, Event.MODEL_TOOL_CALLS): State.TOOL_CALL for s in MODEL_INPUT_STATES},
    **{(s, Event.MODEL_DELEGATE): State.AGENT_CALL for s in MODEL_INPUT_STATES},
    **{(s, Event.HUMAN_TURN): State.WAITING for s in MODEL_INPUT_STATES},
    (State.TOOL_CALL, Event.TOOLS_DONE): State.TOOL_RESULT,
    (State.AGENT_CALL, Event.CHILD_DONE): State.AGENT_RESULT,
    (State.ASSISTANT_MESSAGE, Event.REPLY_INTERACTIVE): State.WAITING,
    (State.ASSISTANT_MESSAGE, Event.REPLY_ONE_SHOT): State.FINISHED,
    (State.WAITING, Event.USER_SENDS): State.USER_MESSAGE,
    (State.WAITING, Event.HUMAN_ANSWERS): State.ASSISTANT_MESSAGE,
    (State.WAITING, Event.USER_ENDS): State.FINISHED,
    **{(s, Event.LIMIT): State.FINISHED for s in State if s is not State.FINISHED},
}

TERMINAL = frozenset({State.FINISHED})


def transition(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def allowed_events(state: State) -> set[Event]:
    return {event for (source, event) in TRANSITIONS if source is state}
