"""What the Web UI shows of a workflow (workflows/details.py): a conversation's static
details, and the current details of conversations, comparisons and active-branch records."""

from __future__ import annotations

from p2engine.contract.agent import AgentEval, AgentSpec
from p2engine.contract.evals import EvalOutcome, PairInput, PairOutcome, PairSide
from p2engine.contract.models import ActiveBranch, ConversationInput, ConversationState, StackEntry
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage
from p2engine.workflows.details import (
    active_branch_details,
    compare_details,
    conversation_details,
    current_details,
)


def entry(kind: State, preview: str = "", *scores: float) -> StackEntry:
    evaluations = [EvalOutcome(evaluator_id="e", version="1", value=v) for v in scores]
    return StackEntry(step=1, kind=kind, agent_id="alpha", preview=preview, evaluations=evaluations)


def test_a_finished_conversation_shows_its_score_and_last_words_not_the_bare_finish() -> None:
    s = ConversationState(
        state=State.FINISHED,
        reason=FinishReason.DONE,
        step=3,
        usage=Usage(prompt_tokens=300, completion_tokens=26, cost_usd=0.0042),
        stack=[
            entry(State.USER_MESSAGE, "weather in Tokyo?"),
            entry(State.ASSISTANT_MESSAGE, "18°C and light rain", 1.0, 0.5),
            entry(State.FINISHED),
        ],
    )
    assert current_details("alpha", s) == (
        "**alpha** · state **Finished** (done) · step 3 · score 0.75 · 326 tokens · $0.0042\n\n"
        "last: AssistantMessage 18°C and light rain"
    )


def test_penalties_and_what_the_judges_spent_are_shown_apart_from_the_agents_spending() -> None:
    s = ConversationState(
        step=2,
        penalties=1,
        eval_usage=Usage(prompt_tokens=90, completion_tokens=10, cost_usd=0.001),
        stack=[entry(State.TOOL_RESULT, "ok")],
    )
    assert current_details("alpha", s) == (
        "**alpha** · state **UserMessage** · step 2 · 0 tokens · $0.0000 · 1 penalties\n\n"
        "last: ToolResult ok\n\njudges: 100 tokens · $0.0010"
    )


def test_an_empty_conversation_has_no_last_entry() -> None:
    assert current_details("alpha", ConversationState()).endswith("\n\nlast: - ")


PAIR = PairInput(
    evaluator_id="better_answer",
    question="q-ref",
    a=PairSide(conversation_id="conv-a", ref="ra"),
    b=PairSide(conversation_id="conv-b", ref="rb"),
)
HEAD = "**better_answer** · A conv-a vs B conv-b · shown first: "


def test_a_comparison_shows_which_answer_the_judge_reads_first_while_it_judges() -> None:
    assert compare_details(PAIR, False, None) == f"{HEAD}conv-a\n\njudging"
    assert compare_details(PAIR, True, None) == f"{HEAD}conv-b\n\njudging"


def test_a_finished_comparison_shows_its_verdict_or_why_there_is_none() -> None:
    verdict = PairOutcome(
        evaluator_id="better_answer", version="1", value=0.8, winner="a", swapped=True
    )
    assert compare_details(PAIR, True, verdict) == (
        f"{HEAD}conv-b\n\nwinner: **a** · preference for A 0.80"
    )
    failed = PairOutcome(evaluator_id="better_answer", version="?", swapped=False, error="boom")
    assert compare_details(PAIR, False, failed) == f"{HEAD}conv-a\n\nerror: boom"


def test_the_active_branch_record_names_where_the_conversation_goes_on() -> None:
    record = ActiveBranch(root="conv-x", active="conv-x~b2")
    assert active_branch_details(record, 3) == (
        "**conv-x** continues in **conv-x~b2** · 3 checkouts this run"
    )


def test_the_details_name_the_latest_children_and_count_the_earlier_ones() -> None:
    results = [
        StackEntry(
            step=n, kind=State.AGENT_RESULT, agent_id="alpha", preview="ok", child_id=f"c{n}"
        )
        for n in range(1, 6)
    ]
    details = current_details("alpha", ConversationState(stack=results))
    assert details.endswith("last: AgentResult ok\n\nchildren: c3, c4, c5 (+2 earlier)")


def test_a_conversations_static_details_say_who_runs_it_on_what_for_whom_and_its_message() -> None:
    helper = AgentSpec(
        id="helper",
        model="scripted/helper",
        tools=["get_weather"],
        eval=AgentEval(evaluators=["own"]),
    )
    inp = ConversationInput(
        agent=helper, message="weather in Tokyo?", lineage=["root", "alpha"], evaluators=["run"]
    )
    assert conversation_details(inp) == (
        "**helper** on scripted/helper\n\ntools: get_weather\n\nevaluators: own, run\n\n"
        "delegated by: root → alpha\n\nmessage: weather in Tokyo?"
    )
    person = AgentSpec(id="reviewer", type="human")
    assert (
        conversation_details(ConversationInput(agent=person))
        == "**reviewer** on a person\n\ntools: -"
    )


def test_the_static_details_name_the_model_the_conversation_runs_on() -> None:
    plain, own = AgentSpec(id="a"), AgentSpec(id="a", model="m/own")
    assert conversation_details(ConversationInput(agent=plain)).startswith(
        "**a** on scripted/default\n"
    )
    assert conversation_details(ConversationInput(agent=own)).startswith("**a** on m/own\n")
    run = ConversationInput(agent=own, model="m/run")
    assert conversation_details(run).startswith("**a** on m/run\n")
