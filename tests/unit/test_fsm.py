"""The conversation FSM transition table (workflows/fsm.py)."""

from __future__ import annotations

import pytest

from p2engine.contract.states import State
from p2engine.workflows.fsm import (
    TERMINAL,
    TRANSITIONS,
    Event,
    IllegalTransition,
    allowed_events,
    transition,
)

NON_TERMINAL = [s for s in State if s is not State.FINISHED]
MODEL_INPUTS = [State.USER_MESSAGE, State.TOOL_RESULT, State.AGENT_RESULT]


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_every_non_terminal_state_finishes_on_limit(state: State) -> None:
    assert transition(state, Event.LIMIT) is State.FINISHED


def test_finished_has_no_outgoing_transitions() -> None:
    assert allowed_events(State.FINISHED) == set()
    assert not [key for key in TRANSITIONS if key[0] is State.FINISHED]
    for event in Event:
        with pytest.raises(IllegalTransition):
            transition(State.FINISHED, event)


def test_finished_is_the_only_terminal_state() -> None:
    assert frozenset({State.FINISHED}) == TERMINAL


@pytest.mark.parametrize("state", MODEL_INPUTS)
@pytest.mark.parametrize(
    ("event", "target"),
    [
        (Event.MODEL_TEXT, State.ASSISTANT_MESSAGE),
        (Event.MODEL_TOOL_CALLS, State.TOOL_CALL),
        (Event.MODEL_DELEGATE, State.AGENT_CALL),
    ],
)
def test_model_input_states_follow_the_model_outcome(
    state: State, event: Event, target: State
) -> None:
    assert transition(state, event) is target


def test_tool_call_goes_to_tool_result_when_tools_are_done() -> None:
    assert transition(State.TOOL_CALL, Event.TOOLS_DONE) is State.TOOL_RESULT


def test_agent_call_goes_to_agent_result_when_child_is_done() -> None:
    assert transition(State.AGENT_CALL, Event.CHILD_DONE) is State.AGENT_RESULT


def test_assistant_message_waits_when_interactive() -> None:
    assert transition(State.ASSISTANT_MESSAGE, Event.REPLY_INTERACTIVE) is State.WAITING


def test_assistant_message_finishes_when_one_shot() -> None:
    assert transition(State.ASSISTANT_MESSAGE, Event.REPLY_ONE_SHOT) is State.FINISHED


def test_waiting_goes_to_user_message_when_user_sends() -> None:
    assert transition(State.WAITING, Event.USER_SENDS) is State.USER_MESSAGE


@pytest.mark.parametrize("state", MODEL_INPUTS)
def test_human_turn_waits_after_any_model_input_state(state: State) -> None:
    assert transition(state, Event.HUMAN_TURN) is State.WAITING


def test_human_answer_while_waiting_is_an_assistant_message() -> None:
    assert transition(State.WAITING, Event.HUMAN_ANSWERS) is State.ASSISTANT_MESSAGE


def test_user_ending_while_waiting_finishes() -> None:
    assert transition(State.WAITING, Event.USER_ENDS) is State.FINISHED


def test_allowed_events_of_waiting() -> None:
    assert allowed_events(State.WAITING) == {
        Event.USER_SENDS,
        Event.HUMAN_ANSWERS,
        Event.USER_ENDS,
        Event.LIMIT,
    }


@pytest.mark.parametrize(
    "state", [s for s in State if s is not State.WAITING and s is not State.FINISHED]
)
@pytest.mark.parametrize("event", [Event.HUMAN_ANSWERS, Event.USER_ENDS])
def test_human_answers_and_user_ends_only_apply_while_waiting(state: State, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        transition(state, event)


@pytest.mark.parametrize(
    "state", [State.TOOL_CALL, State.AGENT_CALL, State.ASSISTANT_MESSAGE, State.WAITING]
)
def test_human_turn_is_illegal_outside_model_input_states(state: State) -> None:
    with pytest.raises(IllegalTransition):
        transition(state, Event.HUMAN_TURN)


def test_human_agent_turn_path() -> None:
    path = [State.USER_MESSAGE]
    for event in (Event.HUMAN_TURN, Event.HUMAN_ANSWERS, Event.REPLY_ONE_SHOT):
        path.append(transition(path[-1], event))
    assert path == [
        State.USER_MESSAGE,
        State.WAITING,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.USER_MESSAGE, Event.HUMAN_ANSWERS),
        (State.TOOL_CALL, Event.MODEL_TEXT),
        (State.FINISHED, Event.LIMIT),
        (State.WAITING, Event.MODEL_TEXT),
        (State.ASSISTANT_MESSAGE, Event.TOOLS_DONE),
        (State.USER_MESSAGE, Event.USER_SENDS),
        (State.AGENT_CALL, Event.TOOLS_DONE),
    ],
)
def test_illegal_move_raises_with_state_and_event(state: State, event: Event) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(state, event)
    assert info.value.state is state
    assert info.value.event is event
    assert str(state) in str(info.value)
    assert str(event) in str(info.value)


def test_allowed_events_of_tool_call() -> None:
    assert allowed_events(State.TOOL_CALL) == {Event.TOOLS_DONE, Event.LIMIT}


MODEL_OUTCOMES = {Event.MODEL_TEXT, Event.MODEL_TOOL_CALLS, Event.MODEL_DELEGATE, Event.HUMAN_TURN}


@pytest.mark.parametrize(
    ("state", "events"),
    [
        (State.USER_MESSAGE, MODEL_OUTCOMES | {Event.LIMIT}),
        (State.TOOL_RESULT, MODEL_OUTCOMES | {Event.LIMIT}),
        (State.AGENT_RESULT, MODEL_OUTCOMES | {Event.LIMIT}),
        (State.TOOL_CALL, {Event.TOOLS_DONE, Event.LIMIT}),
        (State.AGENT_CALL, {Event.CHILD_DONE, Event.LIMIT}),
        (State.ASSISTANT_MESSAGE, {Event.REPLY_INTERACTIVE, Event.REPLY_ONE_SHOT, Event.LIMIT}),
        (State.WAITING, {Event.USER_SENDS, Event.HUMAN_ANSWERS, Event.USER_ENDS, Event.LIMIT}),
        (State.FINISHED, set()),
    ],
)
def test_each_state_allows_exactly_the_designed_events(state: State, events: set[Event]) -> None:
    assert allowed_events(state) == events
    for event in set(Event) - events:
        with pytest.raises(IllegalTransition):
            transition(state, event)


def test_one_shot_tool_path_reaches_finished() -> None:
    path = [State.USER_MESSAGE]
    for event in (
        Event.MODEL_TOOL_CALLS,
        Event.TOOLS_DONE,
        Event.MODEL_TEXT,
        Event.REPLY_ONE_SHOT,
    ):
        path.append(transition(path[-1], event))
    assert path == [
        State.USER_MESSAGE,
        State.TOOL_CALL,
        State.TOOL_RESULT,
        State.ASSISTANT_MESSAGE,
        State.FINISHED,
    ]
