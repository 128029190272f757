"""The offline `scripted/proposer` model: GEPA's reflective mutation with no language model,
so `p2e learn` can be shown offline and the improvement it shows is earned, not scripted.

Its prompt is the reflection prompt of gepa's `InstructionProposalSignature` (the default
template: the current instruction in the first ``` block, then the examples as `# Example N`
with `## <key>` sections). It reads the current instruction and every section whose key
names feedback; for each unmet-feature reason of the scripted judge it recognises (the exact
texts in agents/scripted.py) it adds the instruction sentence the scripted model obeys,
unless the instruction already asks for that, and keeps the rest. It replies with a short
line, then the new instruction in ``` fences, which `output_extractor` returns. With nothing
actionable (a control feature, which no instruction can change) the instruction comes back
unchanged. A prompt of another shape gets a reply without fences, so the caller can record a
failed proposal. It reads nothing but the prompt: the same prompt always gets the same reply.
"""

from __future__ import annotations

import re
from typing import Any

from gepa.strategies.instruction_proposal import InstructionProposalSignature

from p2engine.agents.scripted import (
    IN_CELSIUS,
    NO_FAHRENHEIT,
    NO_SOURCE,
    NOT_BULLETS,
    TOO_LONG_RE,
    Instructions,
    ScriptedReply,
    read_instructions,
)
from p2engine.agents.turn import text_of

PROPOSER = "proposer"  # the model name: `scripted/proposer`
# The fixed text around the template's two placeholders, to find the instruction and the
# examples in a rendered prompt exactly (taken from gepa, so they cannot drift apart).
_HEAD, _, _AFTER = InstructionProposalSignature.default_prompt_template.partition("<curr_param>")
_MIDDLE, _, _TAIL = _AFTER.partition("<side_info>")
EXAMPLE_RE = re.compile(r"^# Example \d+$", re.MULTILINE)
SECTION_RE = re.compile(r"^## (.+)$", re.MULTILINE)
NOT_GEPA = (
    "scripted proposer: this is not GEPA's instruction-proposal prompt (the current "
    "instruction in a fenced block, then examples with feedback), so there is no instruction "
    "to revise."
)


class NotAProposalPrompt(ValueError):
    """The prompt is not GEPA's reflection prompt: there is no instruction to revise."""


def read_prompt(prompt: str) -> tuple[str, list[str]]:
    """The current instruction and every example's feedback sections in a GEPA reflection
    prompt, or NotAProposalPrompt."""
    if not (prompt.startswith(_HEAD) and prompt.endswith(_TAIL)):
        raise NotAProposalPrompt("not GEPA's default reflection prompt")
    body = prompt[len(_HEAD) : len(prompt) - len(_TAIL)]
    instruction, found, examples = body.partition(_MIDDLE)
    if not found:
        raise NotAProposalPrompt("no examples after the instruction")
    feedback = []
    for example in EXAMPLE_RE.split(examples)[1:]:
        sections = SECTION_RE.split(example)[1:]  # key, text, key, text, ...
        keys, texts = sections[::2], sections[1::2]
        feedback += [
            text.strip() for key, text in zip(keys, texts, strict=True) if "feedback" in key.lower()
        ]
    return instruction.strip(), feedback


def wanted(feedback: list[str]) -> Instructions:
    """What the recognised reasons in `feedback` ask the answers to do; others are ignored."""
    text = "\n".join(feedback)
    limits = [int(m.group(1)) for m in TOO_LONG_RE.finditer(text)]
    return Instructions(
        bullets=NOT_BULLETS in text,
        units="fahrenheit" if IN_CELSIUS in text or NO_FAHRENHEIT in text else None,
        max_words=min(limits, default=None),
        cite=NO_SOURCE in text,
    )


def missing_sentences(have: Instructions, want: Instructions) -> list[str]:
    """The sentences that make an instruction that asks for `have` ask for `want` too, in
    the order the model applies them; each is a phrasing the scripted model recognises."""
    sentences = []
    if want.bullets and not have.bullets:
        sentences.append("Answer as a bullet list.")
    if want.units == "fahrenheit" and have.units != "fahrenheit":
        sentences.append("Give temperatures in Fahrenheit.")
    limit = want.max_words
    if limit is not None and (have.max_words is None or have.max_words > limit):
        sentences.append(f"Answer in at most {limit} words.")
    if want.cite and not have.cite:
        sentences.append("Cite the tool you used.")
    return sentences


def propose(prompt: str) -> str:
    """The scripted proposer's reply to `prompt` (see the module docstring)."""
    try:
        instruction, feedback = read_prompt(prompt)
    except NotAProposalPrompt:
        return NOT_GEPA
    added = missing_sentences(read_instructions(instruction), wanted(feedback))
    if not added:
        line = "The feedback asks for nothing this instruction can add, so it stays as it is."
        return f"{line}\n```\n{instruction}\n```"
    new = "\n".join([instruction, *added] if instruction else added)
    return f"Added what the feedback asks for: {' '.join(added)}\n```\n{new}\n```"


def proposer_reply(messages: list[dict[str, Any]]) -> ScriptedReply:
    """The reply to the conversation's last user message, which holds the prompt."""
    asked = [text_of(m) for m in messages if m.get("role") == "user"]
    return ScriptedReply(text=propose(asked[-1] if asked else ""))
