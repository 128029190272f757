"""Everything that crosses a workflow/activity/client boundary.

Sent with the pydantic data converter. Old histories must keep decoding, so new fields are
always optional with defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from p2engine.contract.agent import DEFAULT_MODEL, AgentSpec, DedupPolicy, Rule
from p2engine.contract.agent_config import KNOBS, AgentConfig, ConfigPatch
from p2engine.contract.evals import EvalOutcome, EvaluatorInfo, RewardPolicy
from p2engine.contract.hashing import content_ref
from p2engine.contract.mcp import McpServerInfo
from p2engine.contract.routing import Routing
from p2engine.contract.states import FinishReason, State
from p2engine.contract.usage import Usage

PREVIEW_CHARS = 160


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ToolCallRequest(BaseModel):
    """One tool call as the model asked for it; `arguments` is the model's raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"


class ContentNode(BaseModel):
    """One message of a conversation, stored in the artifact store.

    Nodes form a chain through `parent`, so an activity rebuilds the transcript from the
    newest ref alone and the workflow never ships the transcript. The ref is a hash of the
    node, so a node written twice (a retried activity) is stored once.
    """

    kind: State
    parent: str | None
    conversation_id: str
    step: int
    agent_id: str
    text: str | None = None
    tool_calls: list[ToolCallRequest] = []
    tool_call_id: str | None = None
    tool_name: str | None = None
    result_ref: str | None = None
    child_id: str | None = Field(default=None, description="AgentResult: the child conversation")

    def canonical(self) -> bytes:
        """The bytes a store keeps for this node, and hashes into its ref."""
        return self.model_dump_json(exclude_defaults=True).encode()

    def ref(self) -> str:
        return content_ref(self.canonical())


WaitingFor = Literal["user", "human"]
ToolStatus = Literal["ok", "error", "timeout", "skipped"]


class Overrides(BaseModel):
    """Runtime changes to the agent, applied from the next step on (`p2e config set-*`, and
    a learning run's pushes of its best config)."""

    persona: str | None = Field(default=None, description="a persona name, or 'none'")
    tools: list[str] | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None

    def active(self) -> bool:
        return self != Overrides()

    def pushed(self, patch: ConfigPatch) -> Overrides:
        """These overrides with the knobs a pushed config sets (PUSHED_KNOBS)."""
        changes = patch.model_dump(include=set(PUSHED_KNOBS), exclude_none=True)
        if "tools" in changes:
            changes["tools"] = list(changes["tools"])
        return self.model_copy(update=changes)

    def on(self, config: AgentConfig) -> AgentConfig:
        """`config` as a step runs it under these overrides (persona aside: a name here)."""
        changes = self.model_dump(include=set(PUSHED_KNOBS), exclude_none=True)
        if "tools" in changes:
            changes["tools"] = tuple(changes["tools"])
        return config.model_copy(update=changes)


# The knobs a learning run pushes to a running conversation: the ones a learner may turn.
PUSHED_KNOBS = ("system_prompt", "tools", "model", "temperature")


class Propagation(BaseModel):
    """An arm's part in a learning run that propagates its best config every N model
    steps: before each N-th model step after the first the conversation waits, its score
    so far on `metric` recorded, until the run releases it with the best sibling's
    config, or with nothing (workflows/propagation.py)."""

    every: int = Field(ge=1, description="model steps between barriers")
    metric: str = Field(description="the evaluator whose mean is the score compared")


class SyncPoint(BaseModel):
    """One barrier as the conversation met it: what the run compares, and what it did."""

    round: int = Field(ge=1)
    score: float | None = Field(description="the metric's mean so far; None before a score")
    overrides: Overrides = Field(description="in force at the barrier")
    released: bool = False
    pushed: ConfigPatch | None = Field(default=None, description="the knobs pushed here")
    source: str | None = Field(default=None, description="the config they came from")


class Release(BaseModel):
    """The `release` update: go on past barrier `round`, with a pushed config or without."""

    round: int = Field(ge=1)
    push: ConfigPatch | None = None
    source: str | None = Field(default=None, description="the pushed config's id")


class SyncStatus(BaseModel):
    """What a learning run reads of an arm at its barriers (the `sync_status` query)."""

    points: list[SyncPoint]
    score: float | None = Field(description="the metric's mean over the whole stack so far")
    overrides: Overrides


class StackEntry(BaseModel):
    """The workflow's small record of one FSM state; the content lives behind `ref`."""

    step: int
    kind: State
    agent_id: str
    ref: str | None = None
    preview: str = ""
    tool_name: str | None = None
    tool_call_id: str | None = None
    status: ToolStatus | None = None
    reason: FinishReason | None = None
    usage: Usage | None = None
    child_id: str | None = None
    waiting_for: WaitingFor | None = None
    cached: bool = False
    penalty: bool = Field(default=False, description="a repeated call run under 'penalty'")
    overrides: Overrides | None = Field(default=None, description="in force for this step")
    evaluations: list[EvalOutcome] = Field(default=[], description="the scores of this entry")


# A tool call's attempt timeout when its registration names none.
DEFAULT_TOOL_TIMEOUT_S = 30.0


class ToolInfo(BaseModel):
    """What the workflow needs to know about a tool to schedule it."""

    name: str
    side_effect_free: bool = False
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
    max_attempts: int = 3


class Catalog(BaseModel):
    """The team and tools a conversation may use, fixed when it starts and given to children."""

    agents: list[AgentSpec] = []
    tools: list[ToolInfo] = []
    personas: list[str] = []
    persona_texts: dict[str, str] = Field(
        default={}, description="name -> template text: what a config's persona_text is"
    )
    dedup: DedupPolicy = "penalty"
    evaluators: list[EvaluatorInfo] = Field(default=[], description="every one the team names")
    mcp_servers: list[McpServerInfo] = Field(default=[], description="names and limits only")
    ref: str | None = Field(
        default=None,
        description="the whole catalog in the artifact store (from CATALOG_BY_REF): what a "
        "conversation's catalog leaves out is read from there when needed",
    )
    agent_ids: list[str] = Field(
        default=[], description="every agent's id, in a catalog that leaves their specs out"
    )

    def agent(self, agent_id: str) -> AgentSpec | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def agent_names(self) -> list[str]:
        return self.agent_ids or [a.id for a in self.agents]

    def for_agent(self, agent: AgentSpec, evaluators: Sequence[str]) -> Catalog:
        """What a conversation of `agent` scored by `evaluators` carries: with the whole
        catalog stored (`ref`), no agent specs (the conversation holds its own, a delegation
        reads its target's), only `agent`'s persona text and only those evaluators' infos;
        without, all of it, as before CATALOG_BY_REF."""
        if self.ref is None:
            return self
        update = {
            "agents": [],
            "agent_ids": self.agent_names(),
            "persona_texts": {p: t for p, t in self.persona_texts.items() if p == agent.persona},
            "evaluators": [e for e in self.evaluators if e.id in evaluators],
        }
        return self.model_copy(update=update)

    def with_part(self, part: Catalog) -> Catalog:
        """This catalog with the agent specs, persona texts and evaluator infos `part` read
        from the store."""
        agents = [*self.agents, *(a for a in part.agents if self.agent(a.id) is None)]
        texts = {**self.persona_texts, **part.persona_texts}
        known = [*self.evaluators, *(e for e in part.evaluators if not self.evaluator(e.id))]
        return self.model_copy(
            update={"agents": agents, "persona_texts": texts, "evaluators": known}
        )

    def part(self, agent_ids: list[str], personas: list[str]) -> Catalog:
        """The specs of `agent_ids` with their personas' texts and their evaluators' infos,
        and the texts of `personas`, as far as this catalog has them."""
        agents = [a for a in self.agents if a.id in agent_ids]
        wanted = {*personas, *(a.persona for a in agents if a.persona is not None)}
        scoring = {i for a in agents if a.eval is not None for i in a.eval.evaluators}
        return Catalog(
            agents=agents,
            persona_texts={p: t for p, t in self.persona_texts.items() if p in wanted},
            evaluators=[e for e in self.evaluators if e.id in scoring],
        )

    def tool(self, name: str) -> ToolInfo:
        return next((t for t in self.tools if t.name == name), ToolInfo(name=name))

    def mcp_server(self, name: str) -> McpServerInfo:
        return next((s for s in self.mcp_servers if s.name == name), McpServerInfo(name=name))

    def evaluator(self, evaluator_id: str) -> EvaluatorInfo | None:
        return next((e for e in self.evaluators if e.id == evaluator_id), None)


class Checkpoint(BaseModel):
    """What a step left that the stack alone does not say, so that a branch can start from
    the end of any step: the stack's length then, the FSM state, the transcript head, the
    usage, the calls waiting to run and the overrides in force."""

    step: int
    length: int = Field(description="stack entries at the end of the step")
    state: State
    waiting_for: WaitingFor | None = None
    head: str | None = None
    usage: Usage = Usage()
    calls: list[ToolCallRequest] = []
    overrides: Overrides = Overrides()
    penalties: int = 0


class BranchOrigin(BaseModel):
    """Where a branch starts: its source conversation and the step it branched after."""

    source: str
    step: int = Field(ge=1)


class BranchStart(BaseModel):
    """A branch's input: its state at start is stored in the artifact store, so the input
    stays small however long the source's stack is."""

    origin: BranchOrigin
    state_ref: str = Field(description="the ConversationState it starts with, as JSON")


class ConversationState(BaseModel):
    """Everything the workflow keeps; carried whole across continue-as-new."""

    state: State = State.USER_MESSAGE
    waiting_for: WaitingFor | None = None
    step: int = 0
    usage: Usage = Usage()
    head: str | None = None
    pending: list[ContentNode] = []
    calls: list[ToolCallRequest] = []
    reason: FinishReason | None = None
    stack: list[StackEntry] = []
    seen_calls: dict[str, int] = Field(default={}, description="dedup key -> first step")
    penalties: int = 0
    overrides: Overrides = Overrides()
    inbox: list[str] = Field(default=[], description="user messages not yet taken")
    runs: int = Field(default=1, description="runs of this conversation (continue-as-new)")
    rewarded: Decimal = Field(default=Decimal(0), description="rewards paid or being paid")
    eval_usage: Usage = Field(default=Usage(), description="what the judges spent, apart")
    checkpoints: list[Checkpoint] = Field(default=[], description="one per step, for branches")
    branch_of: BranchOrigin | None = None
    model_steps: int = Field(default=0, description="model (or rules) steps taken")
    sync_points: list[SyncPoint] = Field(default=[], description="barriers met (Propagation)")
    configs_sent: list[str] = Field(
        default=[], description="refs of the configs a step stored: later steps send the ref"
    )


# The revision of the conversation workflow's commands that new conversations start with
# (workflows/revisions.py says what each changed). Inputs recorded before revisions decode
# as 0 and replay the way they ran.
CURRENT_REVISION = 9


class ConversationInput(BaseModel):
    agent: AgentSpec
    message: str | None = Field(default=None, description="None: wait for the first message")
    model: str | None = Field(default=None, description="overrides the agent's model")
    catalog: Catalog = Catalog()
    interactive: bool = Field(default=False, description="wait for the user after each reply")
    lineage: list[str] = Field(default=[], description="delegating agents, root first")
    context_head: str | None = Field(default=None, description="parent transcript to continue")
    continue_as_new_events: int | None = None
    resume: ConversationState | None = Field(default=None, description="set by continue-as-new")
    revision: int = Field(default=0, ge=0, description="the workflow behaviour it started with")
    evaluators: list[str] = Field(default=[], description="run-wide, beside the agent's own")
    rewards: RewardPolicy | None = Field(default=None, description="how scores pay the agent")
    branch: BranchStart | None = Field(default=None, description="start as a branch of another")
    store_id: str | None = Field(
        default=None, description="the artifact store its starter wrote to (a worker checks)"
    )
    routing: Routing | None = Field(default=None, description="task queues; None: its own")
    propagation: Propagation | None = Field(default=None, description="a learning run's arm")

    def step_model(self, overrides: Overrides) -> str:
        """The model a step calls: the override's, the run's, the agent's, or the default."""
        return overrides.model or self.model or self.agent.model or DEFAULT_MODEL

    def config(
        self, overrides: Overrides | None = None, catalog: Catalog | None = None
    ) -> AgentConfig:
        """The config a step of this conversation runs with `overrides` in force (none: the
        one it starts with): the agent's knobs, the overrides, the step's model, and the
        persona's text from `catalog` (by default the one it carries)."""
        overrides = overrides or Overrides()
        texts = (catalog or self.catalog).persona_texts
        patch = ConfigPatch(
            persona=overrides.persona,
            tools=None if overrides.tools is None else tuple(overrides.tools),
            model=self.step_model(overrides),
            system_prompt=overrides.system_prompt,
            temperature=overrides.temperature,
        )
        return patch.apply(AgentConfig.of(self.agent, texts), texts)


class BranchBase(BaseModel):
    """What a branch of a conversation starts from: its input and its state so far."""

    input: ConversationInput
    state: ConversationState


class ActiveBranch(BaseModel):
    """The branch of `root` that `p2e chat -c <root>` continues (the root itself at first)."""

    root: str
    active: str


class BranchChild(BaseModel):
    """The `branch` update: the branch a running conversation starts as its child."""

    workflow_id: str
    input: ConversationInput


class ConversationStatus(BaseModel):
    conversation_id: str
    agent_id: str
    state: State
    step: int
    usage: Usage
    reason: FinishReason | None = None
    waiting_for: WaitingFor | None = None
    penalties: int = 0


class ConversationResult(BaseModel):
    """How a conversation ended: its reason, reply, usage, score and whole stack."""

    conversation_id: str
    agent_id: str
    reason: FinishReason
    reply_ref: str | None = None
    reply_preview: str = ""
    steps: int
    usage: Usage
    stack: list[StackEntry]
    penalties: int = 0
    score: float | None = Field(default=None, description="the mean of every evaluation")
    eval_usage: Usage = Field(default=Usage(), description="what the judges spent, apart")


class TurnResult(BaseModel):
    """What one user message (or human answer) produced, for `p2e chat`."""

    entries: list[StackEntry]
    reply_ref: str | None = None
    reply_preview: str = ""
    state: State
    reason: FinishReason | None = None


class StepInput(BaseModel):
    """One agent step (model or rules): the transcript head and what to store first, and the
    config it runs: by ref (from CONFIG_BY_REF, workflows/revisions.py), sent along the first
    time, or before that as knobs inline."""

    conversation_id: str
    agent_id: str
    step: int
    model: str
    head: str
    pending: list[ContentNode] = Field(
        default=[], description="nodes made in the workflow, stored before the call"
    )
    system_prompt: str | None = None
    persona: str | None = None
    description: str = ""
    tools: list[str] = []
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    rules: list[Rule] = []
    fallback_reply: str = ""
    store_id: str | None = Field(default=None, description="the store the content is in")
    config_ref: str | None = Field(
        default=None, description="the config it runs, by its store ref; no knobs inline"
    )
    config: AgentConfig | None = Field(
        default=None, description="that config, with the first step that runs it: stored first"
    )
    mcp_listings: list[str] = Field(default=[], description="refs of MCP tool listings offered")

    def inline_config(self) -> AgentConfig | None:
        """The config this step carries, either shape: sent with its ref, or (before
        CONFIG_BY_REF) its knobs inline, the overrides in force; None when the ref alone
        names it, for the worker to read from the store."""
        if self.config_ref is not None:
            return self.config
        return AgentConfig.model_validate(
            {"agent_id": self.agent_id, **self.model_dump(include=set(KNOBS))}
        )


class StepResult(BaseModel):
    ref: str
    text_preview: str = ""
    tool_calls: list[ToolCallRequest] = []
    usage: Usage
    model: str


class CatalogPartInput(BaseModel):
    """What a conversation reads from the whole catalog it names by ref (CATALOG_BY_REF)."""

    ref: str
    agents: list[str] = []
    personas: list[str] = []


class StoreNodesInput(BaseModel):
    nodes: list[ContentNode]


class ToolInput(BaseModel):
    conversation_id: str
    agent_id: str
    step: int
    call: ToolCallRequest
    call_key: str = Field(
        default="",
        description=(
            "the business key (ids.business_key) a side effect of this call is unique on, made"
            " in the workflow; not the duplicate-call key. The name is the wire name old"
            " histories carry; empty in histories recorded before workflows made one"
        ),
    )
    result_parent: str | None = Field(
        default=None,
        description="store the call's ToolResult node under this parent (TOOL_STORES_RESULT)",
    )

    def result_node(self, outcome: ToolOutcome) -> ContentNode:
        """The ToolResult node of `outcome`: the call stores it, the workflow makes it its
        transcript head, so both take it from here."""
        return ContentNode(
            kind=State.TOOL_RESULT,
            parent=self.result_parent,
            conversation_id=self.conversation_id,
            step=self.step,
            agent_id=self.agent_id,
            tool_call_id=self.call.id,
            tool_name=self.call.name,
            result_ref=outcome.result_ref,
            text=outcome.text,
        )


class EvalItem(BaseModel):
    """One stored node to score, and the evaluators that score it."""

    target: str = Field(description="the ref of the node to score")
    step: int
    evaluators: list[str]
    tool_status: str | None = Field(default=None, description="tool results: how the call ended")
    node: ContentNode | None = Field(
        default=None, description="the target itself while the next agent step has yet to store it"
    )
    question: str | None = Field(default=None, description="the ref of the user message answered")


class EvalRequest(BaseModel):
    """The input of the evaluation activity: the nodes one step and the tool results before
    it added, each with its evaluators."""

    conversation_id: str
    agent_id: str
    items: list[EvalItem]
    usage: Usage = Usage()


class ToolOutcome(BaseModel):
    status: ToolStatus
    result_ref: str | None = None
    text: str | None = Field(default=None, description="content kept inline, not stored")
    preview: str = ""
    cached: bool = False
