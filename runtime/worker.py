"""Worker assembly: the workflows and activities one task queue serves."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any, Literal

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkflowRunner

from p2engine.contract.errors import ConfigError
from p2engine.contract.routing import rate_limited_queues
from p2engine.runtime.client import connect
from p2engine.runtime.sandbox import workflow_runner
from p2engine.runtime.settings import Settings
from p2engine.workflows.active_branch import ActiveBranchWorkflow
from p2engine.workflows.compare import CompareWorkflow
from p2engine.workflows.conversation import ConversationWorkflow
from p2engine.workflows.learning import LearningWorkflow
from p2engine.workflows.rollout import RolloutWorkflow

# Workers that `p2e run` starts for one conversation carry this suffix, so that a later run
# does not mistake a finished one for a standing worker.
EPHEMERAL_SUFFIX = "/run"
# An idle worker re-polls at least once a minute; older pollers are gone.
POLLER_FRESH_S = 70


def worker_identity(ephemeral: bool, store_id: str | None = None) -> str:
    """`pid@host`, then `#<store id>` when known (so workers on different stores can see
    each other), then EPHEMERAL_SUFFIX for a worker that serves one `p2e run`."""
    base = f"{os.getpid()}@{socket.gethostname()}" + (f"#{store_id}" if store_id else "")
    return base + EPHEMERAL_SUFFIX if ephemeral else base


# What a worker serves: the workflows (with every activity, on the main task queue), model
# steps on the routed model queues, tool calls on the routed tool queue (contract/routing.py).
Role = Literal["workflows", "models", "tools"]
ROLES: tuple[Role, ...] = ("workflows", "models", "tools")


@functools.cache
def freeze_loaded() -> None:
    """Put what the process has loaded by now (litellm's cost map, the schemas, the modules:
    nearly half a million objects) beyond the cyclic collector's reach, once per process. They
    live as long as the process, yet every full collection would walk them all again: a
    pause of about half a second that a busy worker meets every few hundred conversations,
    since each run's sandbox leaves cycles behind. What is garbage now is collected first."""
    gc.collect()
    gc.freeze()


def build_workers(
    client: Client,
    settings: Settings,
    *,
    roles: Sequence[Role] = ROLES,
    ephemeral: bool = False,
    runner: WorkflowRunner | None = None,
    store_id: str | None = None,
) -> list[Worker]:
    """The workers of `roles` on `settings`' task queues: the main queue's (workflows and
    every activity), and for routed settings a worker per model queue (the rate-limited ones
    polling with Temporal's task-queue rate limit) and one for the tool queue. `runner`
    replaces the sandbox (for a test that reads the workflow's live objects)."""
    from p2engine.activities.evals import EvalActivities
    from p2engine.activities.learning import LearnActivities
    from p2engine.activities.ledger import LedgerActivities
    from p2engine.activities.llm import LlmActivities
    from p2engine.activities.mcp import McpActivities, McpListings
    from p2engine.activities.propagation import PropagationActivities
    from p2engine.activities.rollouts import RolloutActivities
    from p2engine.activities.rules import RuleActivities
    from p2engine.activities.tools import ToolActivities
    from p2engine.activities.tracing import traced
    from p2engine.activities.transcript import ContentActivities, Transcript
    from p2engine.agents.mcp import McpConnections
    from p2engine.agents.personas import PersonaLibrary
    from p2engine.agents.tools import load_plugins
    from p2engine.agents.tools.registry import ToolServices
    from p2engine.runtime.catalog import mcp_servers
    from p2engine.runtime.settings import ledger_for
    from p2engine.runtime.telemetry import activity_spans
    from p2engine.store import open_store, open_tool_cache
    from p2engine.store.remembering import RememberingStore, RememberingToolCache

    load_plugins()
    spans = activity_spans(settings)
    # Activities of one worker read what others of it just wrote: remembered, not read again.
    store = RememberingStore(open_store(settings))
    transcript = Transcript(store, PersonaLibrary(settings.personas_dir))
    mcp_connections = McpConnections(mcp_servers(settings))
    listings = McpListings(store)
    llm = LlmActivities(transcript, settings.scripted, spans, listings)
    mcp = McpActivities(listings, mcp_connections)
    rules = RuleActivities(transcript)
    # Every transfer, a tool's or the workflow's own, a span of its own when tracing.
    ledger = traced(ledger_for(settings), spans)
    cache = RememberingToolCache(open_tool_cache(settings))
    tools = ToolActivities(store, cache, ToolServices(ledger), spans)
    content = ContentActivities(store)
    evaluation = EvalActivities(store, settings.evals_file, spans)
    money = LedgerActivities(ledger, settings.ledger.treasury)
    rollouts = RolloutActivities(store, ledger)
    learning = LearnActivities(store)
    propagation = PropagationActivities(client)

    def worker(queue: str, activities: Sequence[Callable[..., Any]], **options: Any) -> Worker:
        return _ClosingWorker(
            mcp_connections.close,
            client,
            task_queue=queue,
            activities=activities,
            identity=worker_identity(ephemeral, store_id),
            # Five fixed pollers leave a burst of parallel calls waiting in the server's
            # backlog for up to seconds; autoscaling pollers pick them up as they come.
            activity_task_poller_behavior=PollerBehaviorAutoscaling(),
            graceful_shutdown_timeout=timedelta(seconds=30),
            **options,
        )

    main, routing = settings.temporal.task_queue, settings.routing
    workers: list[Worker] = []
    if "workflows" in roles:
        # Every activity, routed ones too: conversations started unrouted still run here.
        everything: list[Callable[..., Any]] = [
            llm.llm_step, rules.rule_step, tools.run_tool, content.store_nodes,
            content.load_state, content.read_catalog, evaluation.evaluate, evaluation.compare,
            money.transfer, money.reward, money.balance, money.snapshot, rollouts.store_arms,
            rollouts.settle, learning.digest, learning.propose, propagation.propagate,
            mcp.list_tools, mcp.call_tool,
        ]  # fmt: skip
        workflows = [
            ConversationWorkflow, CompareWorkflow, ActiveBranchWorkflow, RolloutWorkflow,
            LearningWorkflow,
        ]  # fmt: skip
        sandbox = runner or workflow_runner()
        workers.append(worker(main, everything, workflows=workflows, workflow_runner=sandbox))
    if "models" in roles:
        if routing.models:
            workers.append(worker(routing.models, [llm.llm_step]))
        for queue, rate in rate_limited_queues(routing, main).items():
            workers.append(worker(queue, [llm.llm_step], max_task_queue_activities_per_second=rate))
    if "tools" in roles and routing.tools:
        workers.append(worker(routing.tools, [tools.run_tool, mcp.list_tools, mcp.call_tool]))
    if not workers:
        raise ConfigError(
            f"nothing to serve as {', '.join(roles)}: no such queue is set "
            "(routing.models, routing.model_rates or routing.tools)"
        )
    freeze_loaded()  # the activities have loaded litellm by now
    return workers


class _ClosingWorker(Worker):
    """A worker that closes what its activities hold open (MCP connections) when it stops,
    however it is stopped; closing twice is closing once."""

    def __init__(self, closing: Callable[[], Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closing = closing

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self._closing()


def build_worker(
    client: Client,
    settings: Settings,
    *,
    ephemeral: bool = False,
    runner: WorkflowRunner | None = None,
) -> Worker:
    """The worker of `settings`' main task queue: the workflows and every activity."""
    [worker] = build_workers(
        client, settings, roles=("workflows",), ephemeral=ephemeral, runner=runner
    )
    return worker


@asynccontextmanager
async def serving_all(workers: Sequence[Worker]) -> AsyncIterator[None]:
    """Every worker of `workers` running while the block runs."""
    async with AsyncExitStack() as stack:
        for each in workers:
            await stack.enter_async_context(each)
        yield


@asynccontextmanager
async def running_worker(
    settings: Settings, client: Client | None = None, roles: Sequence[Role] = ROLES
) -> AsyncIterator[list[str]]:
    """A worker serving `settings`' task queue while the block runs, in this process.

    It serves every tool and evaluator registered in the process when it starts (those of
    the caller's own modules and of installed plugins alike), so a script that defines its
    tools and then starts conversations needs no `p2e worker` beside it.
    """
    from p2engine.store import store_for

    client = client or await connect(settings)
    async with store_for(settings) as store:
        store_id = await store.identity()
    await refuse_other_stores(client, settings, store_id)
    workers = build_workers(client, settings, roles=roles, store_id=store_id)
    async with serving_all(workers):
        yield [w.task_queue for w in workers]


async def run_worker(settings: Settings, client: Client | None = None) -> None:
    """Serve `settings`' task queue until cancelled (Ctrl-C in `asyncio.run`), as
    `p2e worker` does."""
    async with running_worker(settings, client):
        await asyncio.Event().wait()


def _poller_alive(identity: str, last_seen_s: float) -> bool:
    if identity.endswith(EPHEMERAL_SUFFIX) or last_seen_s > POLLER_FRESH_S:
        return False
    pid, _, host = identity.partition("#")[0].partition("@")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


async def _standing_pollers(client: Client, settings: Settings) -> list[str]:
    """The identities of the long-running workers (`p2e worker`) polling the task queue."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal.namespace,
            task_queue=TaskQueue(name=settings.temporal.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = time.time()
    return [
        p.identity
        for p in response.pollers
        if _poller_alive(p.identity, now - p.last_access_time.ToSeconds())
    ]


async def standing_worker_present(client: Client, settings: Settings) -> bool:
    """Whether a long-running worker (`p2e worker`) polls the task queue right now."""
    return bool(await _standing_pollers(client, settings))


async def refuse_other_stores(client: Client, settings: Settings, store_id: str) -> None:
    """ConfigError when a worker already serving the task queue keeps its content in
    another store: each would miss the content the other wrote."""
    for identity in await _standing_pollers(client, settings):
        theirs = identity.partition("#")[2]
        if theirs and theirs != store_id:
            raise ConfigError(
                f"worker {identity.partition('#')[0]} serves task queue "
                f"'{settings.temporal.task_queue}' from another artifact store ({theirs}; this "
                f"one: {store_id}); workers share one store through P2E_DATABASE_URL"
            )
