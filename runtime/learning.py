"""`LearnClient`: reading and checking a learn file, and starting, following and reading a
LearningWorkflow (workflows/learning.py).

Everything wrong with a learn file is refused before anything starts, by file, line and
field: its shape (an unknown knob is an unknown key), the agent, evaluator, tools and models
it names, the dataset and its split (no part may be empty, and an explicit test set may not
share a task with the rest), the budget counted by arithmetic, and a proposer model litellm
cannot route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.errors import InvalidInput, P2eError, refuse
from p2engine.contract.ids import name_problem
from p2engine.contract.learning import (
    LEARN_PREFIX,
    LearnInput,
    LearnResult,
    LearnSpec,
    LearnState,
    Tasks,
    baseline_candidate,
)
from p2engine.contract.models import CURRENT_REVISION, Catalog
from p2engine.runtime.catalog import load_catalog, stored_catalog
from p2engine.runtime.client import LazyClient
from p2engine.runtime.conversations import check_model, generated_name
from p2engine.runtime.rollout_files import read_cases
from p2engine.runtime.rollouts import RolloutClient
from p2engine.runtime.yaml_files import Located, read_located, validated
from p2engine.store import store_for
from p2engine.workflows.learning import LearningWorkflow
from p2engine.workflows.learning_plan import LearnPlanError, check_budget, split_tasks

LearnHandle = WorkflowHandle[LearningWorkflow, LearnResult]


class LearnNotFound(InvalidInput):
    """No learning run by that id."""


@dataclass(frozen=True)
class LearnFile:
    path: Path
    spec: LearnSpec
    tasks: Tasks
    arms: int  # the most arms the run can start


def load_learn(path: Path, catalog: Catalog) -> LearnFile:
    """The learn file in `path`, checked against `catalog`, or one located ConfigError."""
    data, located = read_located(path, "learn file")
    spec = validated(LearnSpec, data, located)
    agent = catalog.agent(spec.agent)
    if agent is None:
        known = ", ".join(a.id for a in catalog.agents)
        raise located.error(("agent",), f"unknown agent '{spec.agent}'; agents: {known}")
    if spec.evaluator not in {e.id for e in catalog.evaluators}:
        known = ", ".join(sorted(e.id for e in catalog.evaluators))
        raise located.error(("evaluator",), f"unknown evaluator '{spec.evaluator}'; {known}")
    tools = {t.name for t in catalog.tools}
    if unknown := [t for t in spec.knobs.tools or [] if t not in tools]:
        raise located.error(("knobs", "tools"), f"unknown tool '{unknown[0]}'")
    for n, model in enumerate(spec.knobs.models):
        _routable(model, ("knobs", "models", n), located)
    _routable(spec.proposer_model, ("proposer_model",), located)
    try:
        tasks = split_tasks(_tasks(spec, path, located), spec.dataset.split, spec.seed)
        arms = check_budget(spec, tasks)
    except LearnPlanError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None
    return LearnFile(path, spec, tasks, arms)


def _tasks(spec: LearnSpec, path: Path, located: Located) -> list[str]:
    dataset = spec.dataset
    if dataset.file is None:
        if not all(m.strip() for m in dataset.inputs):
            raise located.error(("dataset", "inputs"), "a task must not be empty")
        return dataset.inputs
    source = path.parent / dataset.file
    if not source.is_file():
        raise located.error(("dataset", "file"), f"no dataset {source}")
    return read_cases(source)


def _routable(model: str, where: tuple[str | int, ...], located: Located) -> None:
    try:
        check_model(model)
    except P2eError as exc:
        raise located.error(where, str(exc)) from None


@dataclass(frozen=True)
class PreparedLearn:
    file: LearnFile
    input: LearnInput


class LearnClient(LazyClient):
    """Typed operations on learning runs over one Temporal client."""

    def prepare(self, path: Path, *, proposer_model: str | None = None) -> PreparedLearn:
        catalog = load_catalog(self.settings)
        learned = load_learn(path, catalog)
        spec = learned.spec
        if proposer_model is not None:
            check_model(proposer_model)
            spec = spec.model_copy(update={"proposer_model": proposer_model})
        agent = catalog.agent(spec.agent)
        assert agent is not None  # load_learn checked it
        inp = LearnInput(
            name=path.stem,
            spec=spec,
            tasks=learned.tasks,
            catalog=catalog,
            baseline=AgentConfig.of(agent, catalog.persona_texts),
            revision=CURRENT_REVISION,
        )
        return PreparedLearn(learned, inp)

    async def start(self, inp: LearnInput, *, name: str | None = None) -> LearnHandle:
        if name is not None:
            refuse(name_problem(name.removeprefix(LEARN_PREFIX), "--id"))
        async with store_for(self.settings) as store:
            store_id = inp.store_id or await store.identity()
            record = await store.put_text(baseline_candidate(inp.baseline).as_stored())
            catalog = await stored_catalog(store, inp.catalog, inp.revision)
        ledger = await RolloutClient(self.settings).ledger_problem()
        update = {
            "store_id": store_id,
            "ledger": ledger,
            "baseline_record": record,
            "catalog": catalog,
        }
        inp = inp.model_copy(update=update)
        client = await self.temporal()
        workflow_id = learn_id(name or generated_name(inp.name))
        try:
            return await client.start_workflow(
                LearningWorkflow.run,
                inp,
                id=workflow_id,
                task_queue=self.settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"learn {inp.spec.agent} from {inp.name}",
            )
        except WorkflowAlreadyStartedError:
            raise InvalidInput(f"a learning run '{workflow_id}' exists already") from None

    async def attach(self, learn: str) -> LearnHandle:
        client = await self.temporal()
        return client.get_workflow_handle_for(LearningWorkflow.run, learn_id(learn))

    async def result(self, learn: str | LearnHandle) -> LearnResult:
        handle = await self.attach(learn) if isinstance(learn, str) else learn
        return await handle.result()

    async def progress(self, learn: str | LearnHandle) -> LearnState:
        handle = await self.attach(learn) if isinstance(learn, str) else learn
        return await handle.query(LearningWorkflow.progress)

    async def finished(self, learn: str) -> LearnResult | None:
        """The run's result when it has ended; None while it runs. A run that never
        started is LearnNotFound."""
        handle = await self.attach(learn)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise LearnNotFound(f"no learning run '{handle.id}'") from None
            raise
        if description.status == WorkflowExecutionStatus.RUNNING:
            return None
        return await handle.result()


def learn_id(name: str) -> str:
    """`learn-NAME` for NAME, an id as it is."""
    return name if name.startswith(LEARN_PREFIX) else f"{LEARN_PREFIX}{name}"
