"""The LLM judge (evals/judge.py) with a model stand-in, and the scripted model's verdicts
(agents/scripted.py) that the offline judge returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2engine.agents.scripted import judge_verdict, pair_verdict
from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import JUDGE_MARKER, PAIR_MARKER, Score
from p2engine.contract.states import State
from p2engine.evals.judge import (
    Judge,
    judge,
    judge_messages,
    pair_messages,
    pairwise_judge,
    parse_preference,
    parse_verdict,
    rubric_text,
)
from p2engine.evals.registry import EvalTarget, EvaluationError, PairTarget


def work(text: str, question: str = "What's the weather in Paris?", **fields: object) -> EvalTarget:
    return EvalTarget(kind=State.ASSISTANT_MESSAGE, text=text, question=question, **fields)  # type: ignore[arg-type]


def test_a_verdict_is_a_json_score_maybe_fenced() -> None:
    reply = '{"score": 0.5, "rationale": "half", "parts": {"a": 1}}'
    assert parse_verdict(reply) == Score(value=0.5, rationale="half", parts={"a": 1.0})
    assert parse_verdict(f"```json\n{reply}\n```").value == 0.5


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("fine", "not a JSON object"),
        ('{"rationale": "x"}', "'score': Field required"),
        ('{"score": 1.5}', "'score': Input should be less than or equal to 1"),
        ('{"score": 0.5, "parts": {"a": -1}}', "'parts.a': Input should be greater than"),
    ],
)
def test_a_bad_verdict_says_what_is_wrong(reply: str, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_verdict(reply)
    assert problem in str(error.value)


async def test_the_judge_nudges_after_a_bad_reply_and_takes_the_next_good_one() -> None:
    asked: list[list[dict[str, str]]] = []
    replies = iter(["I like it", '{"score": 0.8, "rationale": "good"}'])

    async def model(name: str, messages: list[dict[str, str]]) -> str:
        asked.append(list(messages))
        return next(replies)

    score = await judge(Judge(rubric="be kind", model="m"), "be kind")(work("x", complete=model))
    assert score == Score(value=0.8, rationale="good")
    first, second = asked
    assert first[0]["content"].startswith(JUDGE_MARKER) and "be kind" in first[0]["content"]
    assert second[-2] == {"role": "assistant", "content": "I like it"}
    assert second[-1]["content"].startswith("That is not a valid verdict (not a JSON object).")


async def test_a_judge_that_never_gives_a_verdict_is_an_evaluation_error() -> None:
    calls = 0

    async def model(name: str, messages: list[dict[str, str]]) -> str:
        nonlocal calls
        calls += 1
        return "no"

    rule = judge(Judge(rubric="r", model="m", attempts=2), "r")
    with pytest.raises(EvaluationError, match="judge m gave no valid verdict in 2 attempts"):
        await rule(work("x", complete=model))
    assert calls == 2
    with pytest.raises(EvaluationError, match="no model"):
        await rule(work("x"))


def test_a_rubric_is_a_file_by_id_or_the_text_itself(tmp_path: Path) -> None:
    (tmp_path / "kind.md").write_text("Be kind.\n")
    assert rubric_text("kind", tmp_path) == "Be kind."
    assert rubric_text("Grade it: is it kind?", tmp_path) == "Grade it: is it kind?"
    with pytest.raises(ConfigError, match="rubric not found"):
        rubric_text("missing", tmp_path)
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(ConfigError, match="the rubric is empty"):
        rubric_text("empty", tmp_path)


def scripted(text: str, question: str = "What's the weather in Paris?") -> dict[str, object]:
    prompt = judge_messages("rubric", work(text, question))[1]["content"]
    return json.loads(judge_verdict(prompt))  # type: ignore[no-any-return]


def test_the_scripted_judge_grades_documented_features() -> None:
    verdict = scripted("What the weather is in Paris: 15°C and partly cloudy.")
    assert verdict["parts"] == {"relevant": 1.0, "specific": 1.0, "concise": 1.0, "no_refusal": 1.0}
    assert verdict["score"] == 1.0
    weak = scripted("Sorry, I cannot.")
    assert weak["parts"] == {"relevant": 0.0, "specific": 0.0, "concise": 0.0, "no_refusal": 0.0}
    assert weak["score"] == 0.0
    assert weak["rationale"] == "scripted judge: weak on relevant, specific, concise, no_refusal"
    assert scripted("Paris is nice")["parts"]["relevant"] == 0.333  # type: ignore[index]


def test_the_scripted_judge_answers_garbage_when_asked_to() -> None:
    prompt = judge_messages("rubric", work("simulate judge garbage"))[1]["content"]
    with pytest.raises(ValueError):
        parse_verdict(judge_verdict(prompt))


# --- pairwise --------------------------------------------------------------------------


@pytest.mark.parametrize(("winner", "value"), [("A", 1.0), ("B", 0.0), ("tie", 0.5)])
def test_a_preference_names_the_winner_as_shown(winner: str, value: float) -> None:
    reply = json.dumps({"winner": winner, "rationale": "why"})
    assert parse_preference(reply) == Score(value=value, rationale="why")
    assert parse_preference(f"```\n{reply}\n```").value == value


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("A is better", "not a JSON object"),
        ('{"rationale": "x"}', "'winner': Field required"),
        ('{"winner": "first"}', "'winner': Input should be 'A', 'B' or 'tie'"),
    ],
)
def test_a_bad_preference_says_what_is_wrong(reply: str, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_preference(reply)
    assert problem in str(error.value)


async def test_the_pairwise_judge_sees_both_works_and_is_nudged_like_the_judge() -> None:
    asked: list[list[dict[str, str]]] = []
    replies = iter(['{"winner": "first"}', '{"winner": "B", "rationale": "more specific"}'])

    async def model(name: str, messages: list[dict[str, str]]) -> str:
        asked.append(list(messages))
        return next(replies)

    compare = pairwise_judge(Judge(rubric="be useful", model="m"), "be useful")
    target = PairTarget("What's up?", "Nothing.", "It is 15°C.", complete=model)
    assert await compare(target) == Score(value=0.0, rationale="more specific")
    first, second = asked
    assert first[0]["content"].startswith(PAIR_MARKER) and "be useful" in first[0]["content"]
    assert first[1]["content"].index("Nothing.") < first[1]["content"].index("It is 15°C.")
    assert second[-1]["content"].startswith("That is not a valid verdict ('winner':")
    with pytest.raises(EvaluationError, match="no model"):
        await compare(PairTarget("q", "a", "b"))


def scripted_pair(first: str, second: str, question: str = "What's the weather in Paris?") -> str:
    prompt = pair_messages("r", PairTarget(question, first, second))[1]["content"]
    return str(json.loads(pair_verdict(prompt))["winner"])


def test_the_scripted_pairwise_judge_prefers_the_better_graded_work_in_either_order() -> None:
    better, worse = "The weather in Paris is 15°C and partly cloudy.", "Sorry, I cannot."
    assert (scripted_pair(better, worse), scripted_pair(worse, better)) == ("A", "B")
    assert scripted_pair(better, better) == "tie"
    assert pair_verdict(
        pair_messages("r", PairTarget("q", "simulate judge garbage", "b"))[1]["content"]
    ).startswith("It looks fine")
