"""The evaluation activity (activities/evals.py): what an evaluator sees, what is stored,
and an evaluator that cannot score recorded as an error, not a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import p2engine.activities.evals as evals_activity
import p2engine.evals.config as config
import p2engine.evals.registry as registry
from p2engine.activities.evals import EvalActivities
from p2engine.contract.evals import Comparison, Evaluation, PairRequest, PairSide, Score
from p2engine.contract.models import ContentNode, EvalItem, EvalRequest, ToolCallRequest
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.evals.registry import EvalTarget, EvaluationError, PairTarget, evaluator, pairwise
from p2engine.runtime.settings import PROJECT_ROOT
from p2engine.store.artifacts import ArtifactDirectory, LocalArtifactStore
from p2engine.store.base import ArtifactNotFound

seen: list[EvalTarget] = []


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_EVALUATORS", dict(registry._EVALUATORS))
    monkeypatch.setattr(registry, "_PAIRWISE", dict(registry._PAIRWISE))
    monkeypatch.setattr(config, "_loaded", None)
    seen.clear()

    @evaluator("unit_sees", version="3", description="records its target")
    def sees(target: EvalTarget) -> Score:
        seen.append(target)
        return Score(value=0.5, rationale="half")

    @evaluator("unit_cannot", version="1", description="never scores")
    def cannot(target: EvalTarget) -> Score:
        raise EvaluationError("the judge answered in riddles")


def node(kind: State, parent: str | None, **fields: object) -> ContentNode:
    return ContentNode.model_validate(
        {
            "kind": kind,
            "parent": parent,
            "conversation_id": "c",
            "step": 1,
            "agent_id": "a",
            **fields,
        }
    )


async def test_a_pending_tool_result_is_scored_from_the_item_with_its_question_and_recorded(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    activities = EvalActivities(store, PROJECT_ROOT / "config" / "evals.yml")
    user = node(State.USER_MESSAGE, None, text="weather in Oslo?")
    call = node(
        State.TOOL_CALL,
        user.ref(),
        tool_calls=[ToolCallRequest(id="c1", name="get_weather", arguments='{"city": "Oslo"}')],
    )
    await store.put_node(user)
    await store.put_node(call)
    content = await store.put_text('{"temperature": 4}')
    result = node(
        State.TOOL_RESULT,
        call.ref(),
        tool_call_id="c1",
        tool_name="get_weather",
        result_ref=content,
    )
    request = EvalRequest(
        conversation_id="c",
        agent_id="a",
        items=[
            EvalItem(
                target=result.ref(),
                step=2,
                evaluators=["unit_sees", "unit_cannot"],
                tool_status="ok",
                node=result,
                question=user.ref(),
            )
        ],
        usage=Usage(prompt_tokens=10),
    )

    [outcomes] = await ActivityEnvironment().run(activities.evaluate, request)

    [target] = seen
    assert (target.kind, target.text, target.question) == (
        State.TOOL_RESULT, '{"temperature": 4}', "weather in Oslo?"
    )  # fmt: skip
    assert (target.tool_name, target.tool_status, target.usage.prompt_tokens) == (
        "get_weather", "ok", 10
    )  # fmt: skip
    sees, cannot = outcomes
    assert (sees.evaluator_id, sees.version, sees.value, sees.error) == (
        "unit_sees",
        "3",
        0.5,
        None,
    )
    assert (cannot.value, cannot.error) == (None, "the judge answered in riddles")
    directory = ArtifactDirectory(tmp_path)
    with pytest.raises(ArtifactNotFound):  # the workflow stores it with its next step
        directory.get_node(result.ref())
    assert sees.ref is not None and cannot.ref is not None
    record = Evaluation.model_validate_json(directory.get_text(sees.ref))
    assert (record.target, record.step, record.score) == (
        result.ref(), 2, Score(value=0.5, rationale="half")
    )  # fmt: skip
    failed = Evaluation.model_validate_json(directory.get_text(cannot.ref))
    assert (failed.score, failed.error) == (None, "the judge answered in riddles")


async def test_a_model_step_is_scored_on_its_text_and_calls_and_items_keep_their_order(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    activities = EvalActivities(store, PROJECT_ROOT / "config" / "evals.yml")
    user = node(State.USER_MESSAGE, None, text="hi")
    reply = node(
        State.TOOL_CALL,
        user.ref(),
        text="Let me look.",
        tool_calls=[ToolCallRequest(id="c1", name="get_weather", arguments='{"city": "Rome"}')],
    )
    await store.put_node(user)
    await store.put_node(reply)
    items = [
        EvalItem(target=reply.ref(), step=1, evaluators=["unit_sees"], question=user.ref()),
        EvalItem(target=user.ref(), step=0, evaluators=["unit_sees", "unit_sees"]),
    ]
    request = EvalRequest(conversation_id="c", agent_id="a", items=items)
    first, second = await ActivityEnvironment().run(activities.evaluate, request)
    assert (len(first), len(second)) == (1, 2)  # one list of outcomes per item, in order
    texts = sorted(t.text for t in seen)
    assert texts == ['Let me look.\nget_weather({"city": "Rome"})', "hi", "hi"]
    assert next(t for t in seen if t.kind is State.TOOL_CALL).question == "hi"


async def test_the_question_is_read_once_for_the_steps_that_answer_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalArtifactStore(tmp_path)
    activities = EvalActivities(store, PROJECT_ROOT / "config" / "evals.yml")
    reads: list[str] = []
    get_node = store.get_node

    async def counted(ref: str) -> ContentNode:
        reads.append(ref)
        return await get_node(ref)

    monkeypatch.setattr(store, "get_node", counted)
    monkeypatch.setattr(evals_activity, "QUESTIONS_KEPT", 1)
    questions = [node(State.USER_MESSAGE, None, text=text) for text in ("first?", "second?")]
    for question in questions:
        await store.put_node(question)

    async def ask(question: ContentNode) -> str:
        reply = node(State.ASSISTANT_MESSAGE, question.ref(), text="an answer")
        item = EvalItem(target=reply.ref(), step=2, evaluators=[], node=reply)
        request = EvalRequest(conversation_id="c", agent_id="a", items=[item], usage=Usage())
        target = await activities.target(
            request, item.model_copy(update={"question": question.ref()})
        )
        return target.question

    assert [await ask(q) for q in (questions[0], questions[0])] == ["first?", "first?"]
    assert reads == [questions[0].ref()]
    # One is kept here: the second question takes the first one's place.
    assert [await ask(q) for q in (questions[1], questions[0])] == ["second?", "first?"]
    assert reads == [questions[0].ref(), questions[1].ref(), questions[0].ref()]


async def test_what_an_evaluators_model_calls_spend_is_recorded_with_its_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def model(name: str, messages: list[dict[str, str]]) -> tuple[str, Usage]:
        return "ok", Usage(prompt_tokens=100, completion_tokens=10, cost_usd=0.5)

    monkeypatch.setattr(evals_activity, "complete_text", model)

    @evaluator("unit_asks_twice", version="1", description="two model calls")
    async def asks_twice(target: EvalTarget) -> Score:
        assert target.complete is not None
        await target.complete("m", [])
        await target.complete("m", [])
        return Score(value=1.0)

    @evaluator("unit_asks_then_fails", version="1", description="a call, then no verdict")
    async def asks_then_fails(target: EvalTarget) -> Score:
        assert target.complete is not None
        await target.complete("m", [])
        raise EvaluationError("no verdict")

    store = LocalArtifactStore(tmp_path)
    activities = EvalActivities(store, PROJECT_ROOT / "config" / "evals.yml")
    reply = node(State.ASSISTANT_MESSAGE, None, text="an answer")
    ids = ["unit_asks_twice", "unit_asks_then_fails", "tool_succeeded"]
    item = EvalItem(target=reply.ref(), step=1, evaluators=ids, node=reply)
    request = EvalRequest(conversation_id="c", agent_id="a", items=[item], usage=Usage())

    [outcomes] = await ActivityEnvironment().run(activities.evaluate, request)

    spent = [(o.usage.prompt_tokens, o.usage.cost_usd) if o.usage else None for o in outcomes]
    assert spent == [(200, 1.0), (100, 0.5), None]
    assert outcomes[1].error == "no verdict"
    directory = ArtifactDirectory(tmp_path)
    records = [Evaluation.model_validate_json(directory.get_text(o.ref or "")) for o in outcomes]
    assert [r.usage for r in records] == [o.usage for o in outcomes]


@pytest.mark.parametrize("swapped", [False, True])
async def test_a_comparison_shows_the_drawn_order_and_keeps_as_preference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: bool
) -> None:
    async def model(name: str, messages: list[dict[str, str]]) -> tuple[str, Usage]:
        return "ok", Usage(prompt_tokens=7)

    monkeypatch.setattr(evals_activity, "complete_text", model)
    shown: list[tuple[str, str, str]] = []

    @pairwise("unit_first_wins", version="2", description="biased to the first it sees")
    async def first_wins(target: PairTarget) -> Score:
        assert target.complete is not None
        await target.complete("m", [])
        shown.append((target.question, target.first, target.second))
        return Score(value=1.0, rationale="the first, always")

    store = LocalArtifactStore(tmp_path)
    activities = EvalActivities(store, PROJECT_ROOT / "config" / "evals.yml")
    question = node(State.USER_MESSAGE, None, text="weather in Oslo?")
    answers = [
        node(State.ASSISTANT_MESSAGE, question.ref(), text=text, conversation_id=conversation)
        for text, conversation in (("4°C", "conv-a"), ("cold", "conv-b"))
    ]
    for stored in (question, *answers):
        await store.put_node(stored)
    a, b = (PairSide(conversation_id=n.conversation_id, ref=n.ref()) for n in answers)
    request = PairRequest(
        evaluator_id="unit_first_wins", question=question.ref(), a=a, b=b, swapped=swapped
    )

    outcome = await ActivityEnvironment().run(activities.compare, request)

    assert shown == [("weather in Oslo?", *(("cold", "4°C") if swapped else ("4°C", "cold")))]
    # The judge preferred whatever came first; kept as A's preference, that is B when swapped.
    assert (outcome.value, outcome.winner, outcome.swapped) == (
        (0.0, "b", True) if swapped else (1.0, "a", False)
    )
    assert outcome.usage is not None and outcome.usage.prompt_tokens == 7
    assert outcome.ref is not None
    record = Comparison.model_validate_json(ArtifactDirectory(tmp_path).get_text(outcome.ref))
    assert (record.a, record.b, record.swapped, record.version) == (a, b, swapped, "2")
    assert record.score == Score(value=outcome.value, rationale="the first, always")


async def test_a_pairwise_evaluator_this_worker_lacks_fails_the_activity_for_good(
    tmp_path: Path,
) -> None:
    activities = EvalActivities(LocalArtifactStore(tmp_path), PROJECT_ROOT / "config" / "evals.yml")
    side = PairSide(conversation_id="c", ref="0" * 64)
    request = PairRequest(evaluator_id="nope", question="0" * 64, a=side, b=side, swapped=False)
    with pytest.raises(ApplicationError) as error:
        await ActivityEnvironment().run(activities.compare, request)
    assert error.value.non_retryable and "unknown evaluator 'nope'" in str(error.value)
