"""The scripted proposer (agents/scripted_proposer.py) against gepa's real reflection prompt
and output extractor: the judge's reasons become instructions the scripted model obeys, so
the proposed prompt scores higher; a control's feedback changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import litellm
import pytest
from gepa.strategies.instruction_proposal import InstructionProposalSignature as Proposal

from p2engine.agents.scripted import IN_CELSIUS, NO_SOURCE, NOT_BULLETS, judge_verdict
from p2engine.agents.scripted_proposer import NOT_GEPA, propose
from p2engine.contract.states import State
from p2engine.evals.judge import judge_messages, rubric_text
from p2engine.evals.registry import EvalTarget
from tests.unit.test_scripted_instructions import answer

RUBRICS = Path(__file__).resolve().parents[2] / "config" / "rubrics"
QUESTION = "What's the weather in Paris, Tokyo and Oslo?"
CURRENT = "You are a weather assistant. Answer the user's question with get_weather."
CITE, FAHRENHEIT = "Cite the tool you used.", "Give temperatures in Fahrenheit."


def example(feedback: str, output: str = "In Paris it is 15°C.") -> dict[str, Any]:
    """One record as gepa's default adapter builds its reflective dataset."""
    return {"Inputs": {"question": QUESTION}, "Generated Outputs": output, "Feedback": feedback}


def prompt(instruction: str, *examples: dict[str, Any]) -> str:
    rendered = Proposal.prompt_renderer(
        {"current_instruction_doc": instruction, "dataset_with_feedback": list(examples)}
    )
    assert isinstance(rendered, str)
    return rendered


def proposed(instruction: str, *examples: dict[str, Any]) -> str:
    return Proposal.output_extractor(propose(prompt(instruction, *examples)))["new_instruction"]


def judged(rubric_id: str, system: str) -> tuple[float, str]:
    """The scripted model's answer to QUESTION under `system`, graded by the scripted judge
    with a shipped rubric: its score and rationale."""
    rubric = rubric_text(rubric_id, RUBRICS)
    target = EvalTarget(State.ASSISTANT_MESSAGE, answer(system, QUESTION), QUESTION)
    system_prompt, user_prompt = (m["content"] for m in judge_messages(rubric, target))
    verdict = json.loads(judge_verdict(user_prompt, system_prompt))
    return verdict["score"], verdict["rationale"]


def test_two_unmet_reasons_add_both_sentences_and_keep_the_instruction() -> None:
    feedback = f"Score 0.5. scripted judge: {NO_SOURCE}; {IN_CELSIUS}."
    reply = propose(prompt(CURRENT, example(feedback)))
    assert not reply.startswith("```") and reply.count("```") == 2
    assert Proposal.output_extractor(reply)["new_instruction"] == f"{CURRENT}\n{FAHRENHEIT}\n{CITE}"


def test_the_proposed_instruction_scores_higher_with_the_scripted_judge() -> None:
    """The GEPA loop offline, twice round: answer, judge, propose, answer again."""
    before, feedback = judged("weather_report", CURRENT)
    better = proposed(CURRENT, example(feedback, answer(CURRENT, QUESTION)))
    after, feedback_after = judged("weather_report", better)
    assert (before, after) == (0.0, 1.0)
    assert feedback_after == "scripted judge: meets every feature."
    assert better.startswith(CURRENT)
    # nothing left to fix: the next proposal is the same instruction
    assert proposed(better, example(feedback_after)) == better


def test_control_feedback_leaves_the_instruction_unchanged() -> None:
    score, feedback = judged("lucky_city", CURRENT)
    assert (score, feedback) == (
        0.0,
        "scripted judge: the question's first city, Paris, does not start with a letter "
        "from A to M.",
    )
    reply = propose(prompt(CURRENT, example(feedback)))
    assert "stays as it is" in reply
    assert Proposal.output_extractor(reply)["new_instruction"] == CURRENT
    assert judged("lucky_city", Proposal.output_extractor(reply)["new_instruction"])[0] == 0.0


def test_what_the_instruction_already_asks_for_is_not_added_again() -> None:
    has_them = f"{CURRENT} {CITE} Answer in at most 20 words."
    feedback = f"scripted judge: {NO_SOURCE}; the answer is 30 words long, more than 25."
    assert proposed(has_them, example(feedback)) == has_them
    looser = f"{CURRENT} Answer in at most 40 words."
    assert proposed(looser, example(feedback)) == f"{looser}\nAnswer in at most 25 words.\n{CITE}"


def test_reasons_from_every_example_are_merged_and_the_tightest_limit_kept() -> None:
    examples = (
        example(f"scripted judge: {NOT_BULLETS}; the answer is 30 words long, more than 25."),
        example("scripted judge: the answer is 30 words long, more than 20."),
        example(f"scripted judge: {NOT_BULLETS}."),
    )
    assert proposed("", *examples) == "Answer as a bullet list.\nAnswer in at most 20 words."


def test_only_feedback_is_read_not_the_outputs_or_inputs() -> None:
    said = f"I note that {NO_SOURCE}."
    record = {"Inputs": said, "Generated Outputs": said, "Feedback": "Looks fine."}
    assert proposed(CURRENT, record) == CURRENT


def test_the_same_prompt_always_gets_the_same_reply() -> None:
    text = prompt(CURRENT, example(f"scripted judge: {NO_SOURCE}."))
    assert propose(text) == propose(text)


@pytest.mark.parametrize(
    "text",
    [
        "Improve this prompt: be helpful.",
        "",
        # gepa's prompt with its template changed is another shape
        Proposal.prompt_renderer(
            {
                "current_instruction_doc": CURRENT,
                "dataset_with_feedback": [example(f"scripted judge: {NO_SOURCE}.")],
                "prompt_template": "Instruction: <curr_param>\nData: <side_info>",
            }
        ),
    ],
)
def test_a_prompt_that_is_not_gepas_gets_a_reply_without_fences(text: Any) -> None:
    reply = propose(text)
    assert reply == NOT_GEPA
    assert "```" not in reply


@pytest.mark.usefixtures("scripted")
async def test_the_proposer_answers_through_litellm() -> None:
    async def ask(content: str) -> str:
        response = await litellm.acompletion(
            model="scripted/proposer",
            messages=[{"role": "user", "content": content}],
            num_retries=0,
        )
        return str(response.choices[0].message.content)

    reply = await ask(prompt(CURRENT, example(f"scripted judge: {NO_SOURCE}.")))
    assert Proposal.output_extractor(reply)["new_instruction"] == f"{CURRENT}\n{CITE}"
    assert await ask("hello") == NOT_GEPA
