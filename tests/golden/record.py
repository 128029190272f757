"""Re-record the golden histories (`make golden`) after an intended workflow change, or
record new ones by name (`python -m tests.golden.record NAME ...`).

Each file is one FSM path of ConversationWorkflow (or a CompareWorkflow's comparison), run
on a private dev server; the replay
tests then check on every run that the workflow code still produces exactly these histories.
A case named `*_r<N>` records the path as revision N runs it (workflows/revisions.py); the
others record revision 0, as they were first recorded, so re-recording them keeps them a
record of the commands old conversations issue.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from p2engine.agents.registry import AgentRegistry
from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import ConfigPatch
from p2engine.contract.evals import RewardPolicy, Threshold
from p2engine.contract.models import CURRENT_REVISION, Overrides, Propagation, Release
from p2engine.contract.names import RELEASE_UPDATE
from p2engine.contract.states import State
from p2engine.ledger import open_ledger
from p2engine.runtime.branches import BranchChanges, Branches
from p2engine.runtime.conversations import ConversationClient
from p2engine.runtime.learning import LearnClient
from p2engine.runtime.rollouts import RolloutClient
from p2engine.runtime.settings import ConversationSettings
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker
from p2engine.workflows.compare import CompareWorkflow
from p2engine.workflows.conversation import ConversationWorkflow

GOLDEN_DIR = Path(__file__).parent
PROJECT_ROOT = GOLDEN_DIR.parent.parent

# What a person does while a case runs (updates), through the handle or the typed client.
Drive = Callable[[WorkflowHandle[Any, Any], ConversationClient], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    agent_id: str
    message: str | None
    changes: dict[str, Any] = field(default_factory=dict)
    interactive: bool = False
    continue_as_new_events: int | None = None
    drive: Drive | None = None  # what a person does while it runs (updates)
    evaluators: list[str] = field(default_factory=list)
    rewards: RewardPolicy | None = None
    scripted_latency_ms: int = 0  # a slow model, for a drive that acts during a step
    cancelled: bool = False  # the drive cancels it: its result is that it was cancelled
    propagation: Propagation | None = None  # it waits at barriers, as a learning run's arm


async def _answer_when_asked(handle: WorkflowHandle[Any, Any], _: ConversationClient) -> None:
    while (await handle.query(ConversationWorkflow.state)).waiting_for != "human":
        await asyncio.sleep(0.1)
    await handle.execute_update(ConversationWorkflow.answer, "Approved, ship it.")


async def _chat_with_overrides(handle: WorkflowHandle[Any, Any], _: ConversationClient) -> None:
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    await handle.execute_update(ConversationWorkflow.set_model, "scripted/other")
    await handle.execute_update(ConversationWorkflow.set_behavior, "critic")
    await handle.execute_update(ConversationWorkflow.set_tools, [])
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Rome")
    await handle.execute_update(ConversationWorkflow.end)


async def _branch_while_chatting(
    handle: WorkflowHandle[Any, Any], conversations: ConversationClient
) -> None:
    """The running conversation starts a branch of its step 3 as its child (an update)."""
    await handle.execute_update(ConversationWorkflow.send_message, "weather in Paris")
    branch = await Branches(conversations).start(
        handle.id, 3, BranchChanges(message="and in Oslo?"), name="golden-branching_r3-child"
    )
    child = await conversations.attach(branch.id)
    while not (stack := await conversations.stack(child)) or stack[-1].kind is not State.WAITING:
        await asyncio.sleep(0.1)  # until the branch has answered its message
    await handle.execute_update(ConversationWorkflow.end)
    await conversations.end(child)


async def _release_with_a_push(handle: WorkflowHandle[Any, Any], _: ConversationClient) -> None:
    """A learning run's part: at the first barrier, push instructions and release."""
    while not (await handle.query(ConversationWorkflow.sync_status)).points:
        await asyncio.sleep(0.1)
    push = ConfigPatch(system_prompt="Answer as a bullet list. Cite the tool you used.")
    release = Release(round=1, push=push, source="0123456789abcdef")
    await handle.execute_update(RELEASE_UPDATE, release, result_type=Overrides)


# Cases recorded again at a later revision: the same path, the commands that revision issues.
async def _cancel_during_the_first_step(
    handle: WorkflowHandle[Any, Any], _: ConversationClient
) -> None:
    await asyncio.sleep(1)  # the model step takes 3 s
    await handle.cancel()


TOOL_CALL = Case("agent_alpha", "What's the weather in Paris?")
DELEGATION = Case("agent_alpha", "Delegate to agent_helper: what's the weather in Tokyo?")
CHAT_WITH_OVERRIDES = Case("agent_alpha", None, interactive=True, drive=_chat_with_overrides)
EVALUATED = Case(
    "agent_alpha",
    "What's the weather in Paris?",
    evaluators=["within_tokens", "tool_succeeded", "default"],
)
REWARDED = Case(
    "agent_alpha",
    "What's the weather in Paris?",
    evaluators=["tool_succeeded", "gives_temperature"],
    rewards=RewardPolicy(budget=Decimal("5"), thresholds=[Threshold(min=0.5, amount=Decimal("3"))]),
)

# Propagation every N steps: a barrier after two model steps, released with a push.
PROPAGATED = Case(
    "agent_alpha",
    "What's the weather in Paris and Oslo?",
    propagation=Propagation(every=2, metric="weather_report"),
    drive=_release_with_a_push,
)

CASES: dict[str, Case] = {
    "text_reply": Case("agent_beta", "hello"),
    "tool_call": TOOL_CALL,
    "tool_error": Case("agent_alpha", "What's the weather in Atlantis?"),
    "tool_refused": Case("agent_beta", 'call get_weather with {"city": "Paris"}'),
    "tool_corrected": Case("agent_alpha", 'call get_weather with {"town": "Paris"}'),
    "max_steps": Case(
        "agent_alpha", "weather in Paris, Rome and Oslo", {"limits": {"max_steps": 2}}
    ),
    "model_error": Case("agent_alpha", "simulate error 401"),
    "delegation": DELEGATION,
    "delegation_cycle": Case("agent_beta", "delegate to agent_beta: hi"),
    "rule_based": Case("treasurer", "what's the weather for the job?"),
    "human": Case("reviewer", "May we ship the release?", drive=_answer_when_asked),
    "human_timeout": Case("reviewer", "Anyone there?", {"human_timeout_s": 1}),
    "interactive_overrides": CHAT_WITH_OVERRIDES,
    "transfer": Case("agent_alpha", "Transfer 25 to agent_beta for helping"),
    "continue_as_new": Case(
        "agent_alpha",
        "weather in Paris, Rome, Oslo, Lima, Cairo, Dubai, Seoul and Vienna",
        continue_as_new_events=60,
    ),
    "tool_call_r1": TOOL_CALL,
    "interactive_overrides_r1": CHAT_WITH_OVERRIDES,
    "evaluated_r1": EVALUATED,
    "rewarded_r1": REWARDED,
    "branching_r3": Case("agent_alpha", None, interactive=True, drive=_branch_while_chatting),
    # Revision 3 keeps each evaluator's mean in the memo as it closes.
    "evaluated_r3": EVALUATED,
    # Rules only: revision 2 scores in local activities.
    "rewarded_r2": REWARDED,
    # Revision 4 ends a conversation whose model step a cancel request interrupted as
    # cancelled.
    "cancelled_r4": Case(
        "agent_alpha",
        "What's the weather in Paris?",
        scripted_latency_ms=3000,
        drive=_cancel_during_the_first_step,
        cancelled=True,
    ),
    "propagated_r5": PROPAGATED,
    # Revision 6 names each step's config by ref, sent along the first time: a persona
    # override mid-conversation sends its config once, and the ones after send the ref.
    "tool_call_r6": TOOL_CALL,
    "propagated_r6": PROPAGATED,
    "interactive_overrides_r6": CHAT_WITH_OVERRIDES,
    "tool_call_r7": TOOL_CALL,
    # Revision 8 carries a slim catalog: the delegation reads its target's spec, the persona
    # override its text, each by a local activity.
    "delegation_r8": DELEGATION,
    "interactive_overrides_r8": CHAT_WITH_OVERRIDES,
    # Revision 9: the tool call, alone in its step, stores its own result node.
    "tool_call_r9": TOOL_CALL,
}


# CompareWorkflow histories: two conversations answer one question, then the pairwise
# evaluator compares them (name -> (the two agents, the question, the evaluator)).
COMPARISONS: dict[str, tuple[tuple[str, str], str, str]] = {
    "compare": (("agent_alpha", "agent_beta"), "What's the weather in Paris?", "better_answer"),
}


# Branch histories: a finished conversation, then a branch of it that runs on its own
# (name -> (the source's message, the step, what the branch changes)).
BRANCHES: dict[str, tuple[str, int, BranchChanges]] = {
    "branched_r3": ("What's the weather in Paris, Rome and Oslo?", 4, BranchChanges()),
    "branched_message_r3": (
        "What's the weather in Paris?",
        3,
        BranchChanges(message="And in Oslo?", model="scripted/other"),
    ),
}


# RolloutWorkflow histories: its arms, two ledger snapshots and the settling, a first run
# that ends in continue-as-new, and a grid whose variants are named by what they vary.
ROLLOUT_FILE = """\
repeats: 2
concurrency: 2
baseline: plain
teams:
  desk:
    initial_message: What's the weather in Paris?
    base: {agent_id: agent_alpha, model: scripted/default}
    variants:
      - id: plain
      - {id: broken, initial_message: simulate error 400}
    eval: {evaluator_id: tool_succeeded}
"""
GRID_FILE = """\
concurrency: 2
teams:
  desk:
    initial_message: What's the weather in Paris?
    base: {agent_id: agent_alpha}
    variants: {model: [scripted/default, scripted/careful], temperature: [0.2]}
"""


@dataclass(frozen=True)
class RolloutCase:
    text: str
    arms_per_run: int
    revision: int  # the rollout's, which its arms start with


ROLLOUTS: dict[str, RolloutCase] = {
    "rollout": RolloutCase(ROLLOUT_FILE, 500, 4),
    "rollout_continued": RolloutCase(ROLLOUT_FILE, 2, 4),
    "rollout_grid_r5": RolloutCase(GRID_FILE, 500, 5),
}


# LearningWorkflow histories: the baseline scored, generations of scoring rollouts and
# proposals (one that improves, one that changes nothing), and the held-out test.
LEARN_FILE = """\
agent: agent_alpha
evaluator: weather_report
seed: 7
dataset:
  inputs: [weather in Paris, weather in Oslo, weather in Rome, weather in Lima,
           weather in Cairo, weather in Seoul, weather in Tokyo, weather in Dubai]
budget: {generations: 2, minibatch: 2}
test_repeats: 1
"""
# Propagating every 2 model steps: two-city tasks wait at a barrier while one-city ones end.
PROPAGATED_LEARN_FILE = """\
agent: agent_alpha
evaluator: weather_report
seed: 7
dataset:
  inputs: [weather in Paris, weather in Oslo and Lima, weather in Rome,
           weather in Cairo and Seoul, weather in Tokyo, weather in Dubai and Vienna,
           weather in Madrid, weather in Berlin and Prague]
budget: {generations: 2, minibatch: 3}
propagation: {every: 2, siblings: 2}
test_repeats: 1
"""
LEARNS = {"learn": LEARN_FILE, "learn_propagated": PROPAGATED_LEARN_FILE}


def golden_id(name: str) -> str:
    """The workflow id a golden history was recorded under: child ids depend on it."""
    if name in LEARNS:
        return f"learn-golden-{name}"
    return f"rollout-golden-{name}" if name in ROLLOUTS else f"conv-golden-{name}"


def revision_of(name: str) -> int:
    """`*_r<N>` records revision N; the cases from before revisions record revision 0."""
    found = re.search(r"_r(\d+)$", name)
    return int(found.group(1)) if found else 0


def scrub(history: str) -> str:
    """Identities and failure stack traces name this machine; keep that out of the repo."""
    history = history.replace(socket.gethostname(), "recorder")
    for prefix, label in ((PROJECT_ROOT, "/p2engine"), (sys.base_prefix, "/python")):
        history = history.replace(str(prefix), label)
    return history


async def record(state_dir: Path, names: list[str]) -> None:
    async with private_temporal(state_dir, "golden") as temporal:
        settings, client = temporal.settings, temporal.client
        registry = AgentRegistry.load(settings.agents_file)
        ledger = open_ledger(settings.ledger, state_dir, create=True)
        for agent_id in registry.ids:
            await ledger.open_wallet(agent_id, settings.ledger.initial_balance)
        await ledger.close()
        for name in names:
            case = CASES.get(name)
            latency = case.scripted_latency_ms if case else 0
            scripted = settings.scripted.model_copy(update={"latency_ms": latency})
            worker_settings = settings.model_copy(update={"scripted": scripted})
            async with build_worker(client, worker_settings):
                if name in COMPARISONS:
                    await _record_comparison(ConversationClient(settings, client), registry, name)
                elif name in BRANCHES:
                    await _record_branch(ConversationClient(settings, client), registry, name)
                elif name in ROLLOUTS:
                    await _record_rollout(RolloutClient(settings, client), state_dir, name)
                elif name in LEARNS:
                    await _record_learn(LearnClient(settings, client), state_dir, name)
                else:
                    await _record_case(ConversationClient(settings, client), registry, name)


async def _record_case(
    conversations: ConversationClient, registry: AgentRegistry, name: str
) -> None:
    case = CASES[name]
    settings = conversations.settings
    spec = AgentSpec.model_validate({**registry.get(case.agent_id).model_dump(), **case.changes})
    case_settings = settings.model_copy(
        update={
            "conversation": ConversationSettings(
                continue_as_new_events=case.continue_as_new_events
            ),
            "rewards": case.rewards,
        }
    )
    conversations = ConversationClient(case_settings, await conversations.temporal())
    inp = conversations.build_input(
        spec, case.message, interactive=case.interactive, evaluators=case.evaluators
    )
    # Each case runs the revision its name says, so re-recording an old one records the old
    # commands again, not the current ones.
    inp = inp.model_copy(update={"revision": revision_of(name), "propagation": case.propagation})
    handle, _ = await conversations.start(inp, name=f"golden-{name}")
    if case.drive is not None:
        await case.drive(handle, conversations)
    try:
        await handle.result()
    except WorkflowFailureError as ended:
        if not (case.cancelled and isinstance(ended.cause, CancelledError)):
            raise
    # The handle names the first run, so a continued conversation records the run that
    # ended in continue-as-new.
    await _write(name, handle)


async def _record_comparison(
    conversations: ConversationClient, registry: AgentRegistry, name: str
) -> None:
    agents, question, evaluator = COMPARISONS[name]
    answered = []
    for n, agent_id in enumerate(agents):
        inp = conversations.build_input(registry.get(agent_id), question)
        answering, _ = await conversations.start(inp, name=f"golden-{name}-{n}")
        answered.append((await answering.result()).conversation_id)
    first, second = answered
    pair = await conversations.pair(first, second, evaluator)
    client = await conversations.temporal()
    handle = await client.start_workflow(
        CompareWorkflow.run,
        pair,
        id=f"golden-{name}",
        task_queue=conversations.settings.temporal.task_queue,
    )
    await handle.result()
    await _write(name, handle)


async def _record_branch(
    conversations: ConversationClient, registry: AgentRegistry, name: str
) -> None:
    message, step, changes = BRANCHES[name]
    inp = conversations.build_input(registry.get("agent_alpha"), message)
    source, _ = await conversations.start(inp, name=f"golden-{name}-source")
    await source.result()
    branch = await Branches(conversations).start(source.id, step, changes, name=f"golden-{name}")
    handle = await conversations.attach(branch.id)
    await handle.result()
    await _write(name, handle)


async def _record_rollout(rollouts: RolloutClient, state_dir: Path, name: str) -> None:
    case = ROLLOUTS[name]
    path = state_dir / f"{name}.yml"
    path.write_text(case.text)
    prepared = rollouts.prepare(path)
    update = {"arms_per_run": case.arms_per_run, "revision": case.revision}
    inp = prepared.input.model_copy(update=update)
    handle = await rollouts.start(inp, name=f"golden-{name}")
    await handle.result()
    # The first run: the one that continued as new, when the rollout did.
    client = await rollouts.temporal()
    await _write(name, client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id))


async def _record_learn(learning: LearnClient, state_dir: Path, name: str) -> None:
    path = state_dir / f"{name}.yml"
    path.write_text(LEARNS[name])
    prepared = learning.prepare(path)
    inp = prepared.input.model_copy(update={"revision": CURRENT_REVISION})
    handle = await learning.start(inp, name=f"golden-{name}")
    await handle.result()
    await _write(name, handle)


async def _write(name: str, handle: WorkflowHandle[Any, Any]) -> None:
    history = (await handle.fetch_history()).to_json()
    (GOLDEN_DIR / f"{name}.json").write_text(scrub(history))
    print(f"recorded {name}.json")


def main() -> None:
    cases = [*CASES, *COMPARISONS, *BRANCHES, *ROLLOUTS, *LEARNS]
    names = sys.argv[1:] or cases
    if unknown := [name for name in names if name not in cases]:
        sys.exit(f"no golden case {', '.join(unknown)}; cases: {', '.join(cases)}")
    with tempfile.TemporaryDirectory(prefix="p2e-golden-") as state_dir:
        asyncio.run(record(Path(state_dir), names))


if __name__ == "__main__":
    main()
