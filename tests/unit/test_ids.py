"""Ids p2e makes and accepts (workflows/ids.py): user names, business keys, child ids, and
the namespaces that keep user-chosen ids and workflow-made keys from ever colliding."""

from __future__ import annotations

import re
import string

from hypothesis import given
from hypothesis import strategies as st

from p2engine.contract.ids import (
    NAME_MAX,
    business_key,
    child_workflow_id,
    name_problem,
    user_key,
)

# --- user names ------------------------------------------------------------------------------


def test_plain_names_are_accepted() -> None:
    for name in ("d1", "agent_alpha-20261122-171508-a50c", "run.7", "_x", "A" * NAME_MAX):
        assert name_problem(name) is None


def test_names_that_could_pass_for_other_ids_are_refused() -> None:
    for name in ("x/d2-agent_helper", "coll/d2-agent_alpha", "a~b1", "wf:x", "a@b", "q x/y?z#w"):
        problem = name_problem(name, "--id")
        assert problem is not None
        assert problem.startswith("--id ")


def test_empty_long_control_and_leading_dash_names_are_refused() -> None:
    assert name_problem("") == "name must not be empty"
    assert name_problem("A" * (NAME_MAX + 1)) == f"name is longer than {NAME_MAX} characters"
    for name in ("a\nb", "a\x1b[31m", "a\x00", "-x", ".x", "é", "\uff15"):
        assert name_problem(name) is not None


names = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=40)
any_text = st.text(min_size=0, max_size=60)


@given(any_text)
def test_an_accepted_name_never_holds_a_separator_of_made_ids(name: str) -> None:
    if name_problem(name) is None:
        assert not set(name) & set("/:@~ \t\n")
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name)


# --- business keys ---------------------------------------------------------------------------


def test_business_key_names_conversation_step_call_and_first_run() -> None:
    assert business_key("conv-d1", "0195-run", 4, 1) == "wf:conv-d1/4/1@0195-run"


def test_another_run_of_the_same_workflow_id_gets_other_keys() -> None:
    assert business_key("conv-coll/d2-agent_alpha", "run-1", 2, 0) != business_key(
        "conv-coll/d2-agent_alpha", "run-2", 2, 0
    )


@given(
    user=any_text,
    workflow_id=any_text,
    run_id=st.uuids().map(str),
    step=st.integers(min_value=0, max_value=10**6),
    n=st.integers(min_value=0, max_value=1000),
)
def test_user_transfer_ids_and_workflow_keys_never_collide(
    user: str, workflow_id: str, run_id: str, step: int, n: int
) -> None:
    assert user_key(user) != business_key(workflow_id, run_id, step, n)


@given(
    workflow_id=names,
    runs=st.lists(st.uuids().map(str), min_size=2, max_size=2, unique=True),
    step=st.integers(min_value=0, max_value=10**6),
    n=st.integers(min_value=0, max_value=1000),
)
def test_keys_of_two_runs_never_collide(
    workflow_id: str, runs: list[str], step: int, n: int
) -> None:
    assert business_key(workflow_id, runs[0], step, n) != business_key(
        workflow_id, runs[1], step, n
    )


@given(name=names, parent=names, step=st.integers(min_value=1, max_value=500), agent=names)
def test_no_accepted_user_name_is_a_child_id(name: str, parent: str, step: int, agent: str) -> None:
    child = child_workflow_id(f"conv-{parent}", step, agent, set())
    if name_problem(name) is None:
        assert f"conv-{name}" != child
        assert name != child


# --- child ids -------------------------------------------------------------------------------


def test_child_workflow_id_format() -> None:
    taken: set[str] = set()
    assert child_workflow_id("conv-1", 4, "agent_helper", taken) == "conv-1/d4-agent_helper"
    assert taken == {"conv-1/d4-agent_helper"}


def test_second_delegation_to_the_same_agent_in_a_step_gets_a_suffix() -> None:
    taken: set[str] = set()
    first = child_workflow_id("conv-1", 4, "agent_helper", taken)
    second = child_workflow_id("conv-1", 4, "agent_helper", taken)
    third = child_workflow_id("conv-1", 4, "agent_helper", taken)
    assert first == "conv-1/d4-agent_helper"
    assert second == "conv-1/d4-agent_helper-2"
    assert third == "conv-1/d4-agent_helper-3"
    assert taken == {first, second, third}


def test_other_agents_or_steps_get_no_suffix() -> None:
    taken: set[str] = set()
    child_workflow_id("conv-1", 4, "agent_helper", taken)
    assert child_workflow_id("conv-1", 4, "child", taken) == "conv-1/d4-child"
    assert child_workflow_id("conv-1", 5, "agent_helper", taken) == "conv-1/d5-agent_helper"
