"""The scripted judge's rubric-driven mode (agents/scripted.py): a rubric's `features:` line
names what it grades, 0 or 1 each, and every unmet feature's reason is said in plain words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2engine.activities.llm import complete_text
from p2engine.agents.scripted import (
    IN_CELSIUS,
    NO_FAHRENHEIT,
    NO_SOURCE,
    NOT_BULLETS,
    judge_verdict,
    pair_verdict,
)
from p2engine.contract.states import State
from p2engine.evals.config import load_evaluators
from p2engine.evals.judge import judge_messages, pair_messages, parse_verdict, rubric_text
from p2engine.evals.registry import Complete, EvalTarget, PairTarget, get_evaluator

CONFIG = Path(__file__).resolve().parents[2] / "config"
PARIS = "What's the weather in Paris?"
GOOD = "- In Paris it is 59°F and partly cloudy. (source: get_weather)"
PLAIN = "In Paris it is 15°C and partly cloudy (humidity 68%)."


def grade(features: str, work: str, question: str = PARIS) -> dict[str, Any]:
    """The scripted judge's verdict on `work`, by a rubric with `features` as its line."""
    return verdict_by(f"Grade the weather report.\n\nfeatures: {features}", work, question)


def verdict_by(rubric: str, work: str, question: str = PARIS) -> dict[str, Any]:
    verdict: dict[str, Any] = json.loads(judge_verdict(*prompts(rubric, work, question)))
    return verdict


def prompts(rubric: str, work: str, question: str = PARIS) -> tuple[str, str]:
    """The user prompt and the system prompt (the rubric's) of a judge prompt."""
    system, user = judge_messages(rubric, final(work, question))
    return user["content"], system["content"]


def final(work: str, question: str = PARIS, complete: Complete | None = None) -> EvalTarget:
    """`work` as the conversation's final answer to `question`."""
    return EvalTarget(State.ASSISTANT_MESSAGE, work, question, step=3, complete=complete)


@pytest.mark.parametrize(
    ("feature", "met", "unmet", "reason"),
    [
        ("cites_tool", "It is 15°C. (source: get_weather)", "It is 15°C.", NO_SOURCE),
        ("cites_tool", GOOD, "It is 15°C. (source: none)", NO_SOURCE),
        ("fahrenheit", "It is 59°F.", "It is 15°C.", IN_CELSIUS),
        ("fahrenheit", GOOD, "It is 15°C (59°F).", IN_CELSIUS),
        ("fahrenheit", GOOD, "It is mild.", NO_FAHRENHEIT),
        ("bullets", "- It is 59°F.\n- It is dry. (source: x)", "It is 59°F.", NOT_BULLETS),
        ("bullets", GOOD, "- It is 59°F.\nIt is dry.", NOT_BULLETS),
        (
            "at_most_5_words",
            "- It is 59°F today. (source: get_weather)",  # bullets and the note do not count
            "It is fifteen degrees in Paris today.",
            "the answer is 7 words long, more than 5",
        ),
    ],
)
def test_each_feature_is_scored_with_its_reason(
    feature: str, met: str, unmet: str, reason: str
) -> None:
    assert grade(feature, met) == {
        "score": 1.0,
        "rationale": "scripted judge: meets every feature.",
        "parts": {feature: 1.0},
    }
    assert grade(feature, unmet) == {
        "score": 0.0,
        "rationale": f"scripted judge: {reason}.",
        "parts": {feature: 0.0},
    }


def test_the_score_is_the_mean_and_the_rationale_names_every_unmet_feature() -> None:
    verdict = grade("cites_tool, fahrenheit, at_most_25_words, bullets", PLAIN)
    assert verdict["parts"] == {
        "cites_tool": 0.0,
        "fahrenheit": 0.0,
        "at_most_25_words": 1.0,
        "bullets": 0.0,
    }
    assert verdict["score"] == 0.25
    assert verdict["rationale"] == (
        "scripted judge: the answer does not name the tool it used as its source; "
        "the answer gives temperatures in °C, not °F; the answer is not a bullet list."
    )
    assert grade("cites_tool, fahrenheit, bullets", GOOD)["rationale"] == (
        "scripted judge: meets every feature."
    )


@pytest.mark.parametrize(
    ("question", "value", "rationale"),
    [
        ("What's the weather in Lisbon and Tokyo?", 1.0, "meets every feature"),
        ("Weather for amsterdam?", 1.0, "meets every feature"),
        (
            "What's the weather in Tokyo and Lisbon?",
            0.0,
            "the question's first city, Tokyo, does not start with a letter from A to M",
        ),
        ("How are you?", 0.0, "the question names no city"),
    ],
)
def test_the_control_depends_on_the_question_only(
    question: str, value: float, rationale: str
) -> None:
    verdicts = [grade("city_initial_in_first_half", work, question) for work in (GOOD, PLAIN, "")]
    assert all(v == verdicts[0] for v in verdicts)
    assert verdicts[0]["parts"] == {"city_initial_in_first_half": value}
    assert verdicts[0]["rationale"] == f"scripted judge: {rationale}."


def test_a_rubric_without_a_features_line_grades_the_four_default_features() -> None:
    verdict = verdict_by(rubric_text("helpful", CONFIG / "rubrics"), PLAIN)
    assert set(verdict["parts"]) == {"relevant", "specific", "concise", "no_refusal"}
    assert verdict["rationale"].startswith("scripted judge: weak on ")


@pytest.mark.parametrize("features", ["cites_tool, sounds_nice", "at_most_0_words", ""])
def test_a_feature_it_cannot_grade_gets_no_verdict_but_says_why(features: str) -> None:
    reply = judge_verdict(*prompts(f"Grade it.\nfeatures: {features}", PLAIN))
    with pytest.raises(ValueError):
        parse_verdict(reply)
    assert reply.startswith("scripted judge: ")
    assert "unknown feature" in reply or "names no feature" in reply


def test_the_pairwise_judge_prefers_the_work_that_meets_more_features() -> None:
    rubric = "features: cites_tool, fahrenheit, bullets"
    for first, second, winner in ((GOOD, PLAIN, "A"), (PLAIN, GOOD, "B"), (GOOD, GOOD, "tie")):
        system, user = pair_messages(rubric, PairTarget(PARIS, first, second))
        assert json.loads(pair_verdict(user["content"], system["content"]))["winner"] == winner


def test_the_shipped_rubrics_name_their_features() -> None:
    report, control = (rubric_text(r, CONFIG / "rubrics") for r in ("weather_report", "lucky_city"))
    assert list(verdict_by(report, PLAIN)["parts"]) == [
        "cites_tool",
        "fahrenheit",
        "at_most_25_words",
        "bullets",
    ]
    assert list(verdict_by(control, PLAIN)["parts"]) == ["city_initial_in_first_half"]


@pytest.mark.usefixtures("scripted")
async def test_the_configured_evaluators_judge_through_litellm() -> None:
    """config/evals.yml -> the rubric file -> the judge prompt -> litellm -> the scripted
    judge -> a Score, as the worker runs it."""
    load_evaluators(CONFIG / "evals.yml")

    async def complete(model: str, messages: list[dict[str, str]]) -> str:
        return (await complete_text(model, messages))[0]

    report, control = get_evaluator("weather_report"), get_evaluator("lucky_city")
    assert (report.kind, report.trigger, control.kind, control.trigger) == (
        "llm_judge",
        "final",
        "llm_judge",
        "final",
    )
    scored = await report.score(final(GOOD, complete=complete))
    assert scored.value == 1.0 and scored.rationale == "scripted judge: meets every feature."
    assert (await report.score(final(PLAIN, complete=complete))).value == 0.25
    control_score = await control.score(final(GOOD, complete=complete))
    assert control_score.parts == {"city_initial_in_first_half": 0.0}
