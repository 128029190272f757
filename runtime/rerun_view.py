"""Rerun views of rollouts and conversations (`--rerun`, `--rerun-save`, `--rerun-serve`).

The CLI process that follows a rollout or watches a conversation logs what it reads through
the typed clients (queries, history, visibility, the ledger's journal); workflow and
activity code never log, so no replay or worker depends on a viewer. `rerun` is imported
only once a recording is opened.

Entity paths (workflow ids split at `/`, each part escaped for Rerun):

    rollouts/<rollout>/arms/<team>/<variant>/<rN>/stack       TextLog, a line per stack entry
    rollouts/<rollout>/arms/<team>/<variant>/<rN>/<dS-agent>/stack   a delegated child's
    rollouts/<rollout>/graph                     GraphNodes + GraphEdges: agent -> variant
                                                 -> arm -> the children it delegated to
    rollouts/<rollout>/metrics/<metric>/<team>/<variant>   Scalars, at `arm` = arms finished
    rollouts/<rollout>/ledger/wallets/<wallet>   Scalars: before (`arm` 0), after (the last)
    rollouts/<rollout>/ledger/summary            TextDocument: the wallets before and after
    conversations/<conversation>/stack           TextLog; children under it as for arms
    conversations/<conversation>/graph           agent -> conversation -> children
    conversations/<conversation>/metrics/<metric>/<conversation>   Scalars, at `step`

Rollout metrics (ROLLOUT_METRICS) are a variant's running figures: mean score, rewards paid,
balance (what its arms' transfers moved into their agents' wallets, net), mean tokens and
mean cost per arm. A conversation's (CONVERSATION_METRICS) are per step: the step's mean
score and the running totals of rewards, tokens and cost. Timelines: `step` (a stack
entry's), `wall` (when the CLI read it) and, in a rollout, `arm`: a variant's finished arms
for its metrics, the most any variant has finished for the rest (the view's timeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from p2engine.contract.errors import ConversationNotFound, InvalidInput, P2eError
from p2engine.contract.states import FinishReason, State

if TYPE_CHECKING:
    from p2engine.contract.models import StackEntry
    from p2engine.contract.rollouts import RolloutProgress
    from p2engine.ledger.models import LedgerSnapshot
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.rollouts import ListedArm, RolloutClient

APPLICATION = "p2engine"
LOCAL = "127.0.0.1"
QUERY_TIMEOUT_S = 5.0
VISIBILITY_WAIT_S = 10.0  # how long `finish` waits for visibility to list every arm closed
ROLLOUT_METRICS = ("score", "reward", "balance", "tokens", "cost_usd")
CONVERSATION_METRICS = ("score", "reward", "tokens", "cost_usd")
TIMELINES = ("wall", "step", "arm", "log_time")
AGENT_COLOR = (66, 135, 245)
GROUP_COLOR = (80, 180, 110)
CONVERSATION_COLOR = (245, 166, 35)

Describe = Callable[["StackEntry"], str]


@dataclass(frozen=True)
class RerunTarget:
    """Where a recording goes: any of the native viewer, a file and a served web viewer."""

    spawn: bool = False
    save: Path | None = None
    serve: bool = False


def rerun_target(
    spawn: bool, save: Path | None, serve: bool, environ: Mapping[str, str] = os.environ
) -> RerunTarget | None:
    """The checked --rerun* options, or None when none is given; refused before anything
    starts, so a typo never leaves a rollout running unwatched."""
    if not (spawn or save is not None or serve):
        return None
    if spawn and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise InvalidInput(
            "--rerun opens the Rerun viewer, which needs a display (DISPLAY or "
            "WAYLAND_DISPLAY is not set); use --rerun-save FILE.rrd or --rerun-serve"
        )
    if save is not None:
        if save.suffix != ".rrd":
            raise InvalidInput(
                f"--rerun-save writes a Rerun recording: name a FILE.rrd, not {save}"
            )
        if not save.parent.is_dir():
            raise InvalidInput(f"--rerun-save: there is no directory {save.parent}")
    return RerunTarget(spawn, save, serve)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        port: int = probe.getsockname()[1]
        return port


def _viewer() -> str | None:
    """The `rerun` viewer installed beside this Python (the venv need not be on PATH)."""
    found = Path(sys.executable).with_name("rerun")
    return str(found) if found.exists() else None


def entity(*parts: str) -> str:
    """An entity path from parts that may hold `/` (workflow ids): one part per segment."""
    import rerun as rr

    return "/".join(rr.escape_entity_path_part(p) for part in parts for p in part.split("/"))


class ViewerUnavailable(P2eError):
    pass


@dataclass(frozen=True)
class Sinks:
    """A target opened: the native viewer spawned and listening, the web viewer served."""

    target: RerunTarget
    stream: Any  # the rerun.RecordingStream that will log to them
    sinks: list[Any]
    url: str | None  # the web viewer's, when served


def open_sinks(target: RerunTarget) -> Sinks:
    """Open the target before the rollout or watch starts, so a viewer that cannot start
    stops the command before there is anything to follow."""
    import rerun as rr

    stream = rr.RecordingStream(APPLICATION)
    sinks: list[Any] = []
    url = None
    if target.save is not None:
        sinks.append(rr.FileSink(target.save))
    if target.serve:
        server = rr.GrpcServerSink(bind_ip=LOCAL, port=_free_port())
        sinks.append(server)
        web_port = _free_port()
        rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=server.uri)
        url = f"http://{LOCAL}:{web_port}/?url={quote(server.uri, safe='')}"
    if target.spawn:
        port = _free_port()
        rr.spawn(port=port, connect=False, executable_path=_viewer(), recording=stream)
        if not _listening(port):  # spawn waits for the viewer to bind before it returns
            raise ViewerUnavailable(
                "the Rerun viewer did not start (its messages above say why: often a GPU "
                "it cannot draw with); use --rerun-save FILE.rrd or --rerun-serve"
            )
        sinks.append(rr.GrpcSink(f"rerun+http://{LOCAL}:{port}/proxy"))
    return Sinks(target, stream, sinks, url)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((LOCAL, port)) == 0


class Recording:
    """One Rerun recording, named after what it shows, into opened sinks."""

    def __init__(self, sinks: Sinks, name: str, blueprint: Any) -> None:
        self.stream = sinks.stream
        self.target, self.url = sinks.target, sinks.url
        self.stream.set_sinks(*sinks.sinks, default_blueprint=blueprint)
        self.stream.send_recording_name(name)

    def places(self) -> list[str]:
        """Where the recording goes, for the user."""
        return [
            *([f"recording to {self.target.save}"] if self.target.save is not None else []),
            *([f"web viewer at {self.url}"] if self.url is not None else []),
            *(["streaming to the Rerun viewer"] if self.target.spawn else []),
        ]

    def log(
        self,
        path: str,
        *archetypes: Any,
        wall: datetime | None = None,
        at: Mapping[str, int] | None = None,
    ) -> None:
        """Log at `wall` (now if not given) and the sequence timelines `at` only."""
        self.stream.reset_time()
        self.stream.set_time("wall", timestamp=wall or datetime.now(UTC))
        for timeline, value in (at or {}).items():
            self.stream.set_time(timeline, sequence=value)
        self.stream.log(path, *archetypes)

    def name_series(self, path: str, name: str) -> None:
        import rerun as rr

        self.stream.log(path, rr.SeriesLines(names=name), static=True)

    async def end(self, say: Callable[[str], None]) -> None:
        """Write out what is buffered; a served recording stays up until Ctrl-C, which
        ends the wait without an error, so the command's own exit code stands."""
        try:
            self.stream.flush()
        except RuntimeError as exc:  # a viewer it streams to went away
            raise ViewerUnavailable(f"the Rerun recording was not all delivered: {exc}") from exc
        if self.url is not None:
            say(f"serving the Rerun recording at {self.url} until Ctrl-C")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
            say("stopped serving the Rerun recording")
        self.stream.disconnect()


@dataclass
class _Followed:
    """What has been logged of one conversation so far."""

    path: str  # its entity path, under which `stack` is
    series: str  # its name in the metric series: its id below the tree's base
    label: str  # its node's label and its lines' prefix: the last part of its id
    up: str | None  # the node it hangs under: a group (variant) or its parent conversation
    logged: int = 0
    closed: bool = False
    agent: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    reward: Decimal = Decimal(0)
    children: list[str] = field(default_factory=list)


class _Tree:
    """Conversations and the children they delegated to: each stack entry logged once as
    it appears, and the graph whenever it grows: agents, the groups their conversations
    are in (a rollout's variants), the conversations, and their delegations."""

    def __init__(
        self,
        recording: Recording,
        conversations: ConversationClient,
        describe: Describe,
        *,
        base: str,
        strip: str,
        graph: str,
        metrics: str | None,
        clock: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        """`clock` gives the sequence timelines, beyond `step`, that every log is at."""
        self.recording = recording
        self.clock = clock
        self.conversations = conversations
        self.describe = describe
        self.base, self.strip, self.graph, self.metrics = base, strip, graph, metrics
        self.followed: dict[str, _Followed] = {}
        self._nodes: dict[str, tuple[str, tuple[int, int, int]]] = {}
        self._edges: set[tuple[str, str]] = set()

    def closed(self, conversation_id: str) -> bool:
        found = self.followed.get(conversation_id)
        return found is not None and found.closed

    async def follow(
        self,
        conversation_id: str,
        stack: list[StackEntry] | None = None,
        closed: bool = False,
        *,
        group: str | None = None,
        parent: str | None = None,
    ) -> None:
        """Log what is new in the conversation's stack (read here unless given), then in
        its children's. One that cannot be read now (no worker answers yet, not listed
        yet) is tried again on the next call. `group` names the node it hangs under."""
        if self.closed(conversation_id):
            return
        if stack is None:
            from temporalio.service import RPCError

            from p2engine.runtime.conversations import is_running

            try:
                handle, description = await self.conversations.describe(conversation_id)
                _, read = await asyncio.wait_for(
                    self.conversations.stack_of(handle, description), timeout=QUERY_TIMEOUT_S
                )
            except (TimeoutError, RPCError, ConversationNotFound):
                return
            stack, closed = read, not is_running(description)
        found = self.followed.get(conversation_id) or self._new(conversation_id, group, parent)
        if self._log_entries(conversation_id, found, stack):
            self._log_graph(stack[-1].step)
        found.closed = closed
        for child in found.children:
            await self.follow(child, parent=conversation_id)

    def _new(self, conversation_id: str, group: str | None, parent: str | None) -> _Followed:
        relative = conversation_id.removeprefix(self.strip)
        up = parent
        if group is not None:
            up = f"group:{group}"
            self._nodes[up] = (group, GROUP_COLOR)
        found = _Followed(entity(self.base, relative), relative, relative.split("/")[-1], up)
        self.followed[conversation_id] = found
        self._nodes[conversation_id] = (found.label, CONVERSATION_COLOR)
        if up is not None:
            self._edges.add((up, conversation_id))
        if self.metrics is not None:
            for metric in CONVERSATION_METRICS:
                self.recording.name_series(self._series(metric, found), relative)
        return found

    def _series(self, metric: str, found: _Followed) -> str:
        return f"{self.metrics}/{metric}/{entity(found.series)}"

    def _log_entries(self, conversation_id: str, found: _Followed, stack: list[StackEntry]) -> bool:
        """Log the entries not logged yet; whether the graph has grown."""
        import rerun as rr

        grew = found.logged == 0 and bool(stack)
        if found.agent is None and stack:
            found.agent = stack[0].agent_id
            agent = f"agent:{found.agent}"
            self._nodes[agent] = (found.agent, AGENT_COLOR)
            # An agent points at what it runs: its group, or a conversation of its own.
            if found.up is None or found.up.startswith("group:"):
                self._edges.add((agent, found.up or conversation_id))
        for entry in stack[found.logged :]:
            text = f"{found.label} · {entry.agent_id} · {self.describe(entry)}"
            log = rr.TextLog(text, level=_level(entry))
            self.recording.log(f"{found.path}/stack", log, at={"step": entry.step, **self.clock()})
            if entry.child_id and entry.child_id not in found.children:
                found.children.append(entry.child_id)
            if self.metrics is not None:
                self._log_metrics(found, entry)
        found.logged = max(found.logged, len(stack))
        return grew

    def _log_metrics(self, found: _Followed, entry: StackEntry) -> None:
        import rerun as rr

        if entry.usage is not None:
            found.tokens += entry.usage.total_tokens
            found.cost_usd += entry.usage.cost_usd
        found.reward += sum(
            (
                o.reward.amount
                for o in entry.evaluations
                if o.reward is not None and o.reward.status == "paid"
            ),
            Decimal(0),
        )
        values: dict[str, float] = {
            "reward": float(found.reward),
            "tokens": float(found.tokens),
            "cost_usd": found.cost_usd,
        }
        if scores := [o.value for o in entry.evaluations if o.value is not None]:
            values["score"] = sum(scores) / len(scores)
        for metric, value in values.items():
            series = self._series(metric, found)
            self.recording.log(series, rr.Scalars(value), at={"step": entry.step, **self.clock()})

    def _log_graph(self, step: int) -> None:
        """The whole graph again, at the step that made it grow."""
        import rerun as rr

        nodes, edges = self._nodes, sorted(self._edges)
        self.recording.log(
            self.graph,
            rr.GraphNodes(
                list(nodes),
                labels=[label for label, _ in nodes.values()],
                colors=[color for _, color in nodes.values()],
            ),
            rr.GraphEdges(edges, graph_type="directed"),
            at={"step": step, **self.clock()},
        )


def _stack_view(origin: str, name: str) -> Any:
    """Stack lines name their conversation and step, so no entity path or time column."""
    import rerun.blueprint as rrb

    hidden = [rrb.encodings.TimelineColumn(t, visible=False) for t in TIMELINES]
    columns = rrb.TextLogColumns(timeline_columns=hidden, text_log_columns=["LogLevel", "Body"])
    return rrb.TextLogView(origin=origin, name=name, columns=columns)


def _panels(timeline: str) -> list[Any]:
    """The views get the room: the side panels start collapsed, on the given timeline."""
    import rerun.blueprint as rrb

    return [
        rrb.BlueprintPanel(state="collapsed"),
        rrb.SelectionPanel(state="collapsed"),
        rrb.TimePanel(timeline=timeline, state="collapsed"),
    ]


def _level(entry: StackEntry) -> str:
    if entry.status == "error" or entry.reason is FinishReason.ERROR:
        return "ERROR"
    if entry.kind is State.FINISHED and entry.reason is not FinishReason.DONE:
        return "WARN"
    return "INFO"


class RolloutRecorder:
    """A rollout as the CLI follows it: `update` with each progress the live table shows,
    `finish` once the rollout has ended, then `recording.end`."""

    def __init__(
        self,
        sinks: Sinks,
        rollouts: RolloutClient,
        conversations: ConversationClient,
        rollout_id: str,
        variants: Sequence[str],
        started: datetime,
        describe: Describe,
    ) -> None:
        self.rollouts = rollouts
        self.rollout_id = rollout_id
        self.started = started
        self.root = entity("rollouts", rollout_id)
        # As the live table does: a variant's own name, unless there are several teams.
        teams = len({v.partition("/")[0] for v in variants}) > 1
        names = {v: v if teams else v.partition("/")[2] for v in variants}
        self.recording = Recording(sinks, rollout_id, self._blueprint(names))
        self.tree = _Tree(
            self.recording,
            conversations,
            describe,
            base=f"{self.root}/arms",
            strip=f"{rollout_id}/",
            graph=f"{self.root}/graph",
            metrics=None,
            clock=lambda: {"arm": self._arm()},
        )
        for metric in ROLLOUT_METRICS:
            for variant, name in names.items():
                self.recording.name_series(self._series(metric, variant), name)
        self._finished: dict[str, int] = {}
        self._progress: RolloutProgress | None = None

    def _series(self, metric: str, variant: str) -> str:
        return f"{self.root}/metrics/{metric}/{entity(variant)}"

    def _arm(self) -> int:
        """Where on `arm` the rollout is: the most arms any variant has finished. It only
        grows, so what is logged at it (the graph, whole each time) is seen at the end."""
        return max(self._finished.values(), default=0)

    def _blueprint(self, names: Mapping[str, str]) -> Any:
        """Each variant's arms' stacks (a tab each) over the graph; the metrics, a line per
        variant, and the wallets beside them; the ledger's table under those."""
        import rerun.blueprint as rrb

        arms = f"{self.root}/arms"
        stacks = [_stack_view(f"{arms}/{entity(v)}", name) for v, name in names.items()]
        plots = [
            rrb.TimeSeriesView(origin=f"{self.root}/metrics/{m}", name=m) for m in ROLLOUT_METRICS
        ]
        plots.append(rrb.TimeSeriesView(origin=f"{self.root}/ledger/wallets", name="wallets"))
        ledger = rrb.TextDocumentView(origin=f"{self.root}/ledger/summary", name="ledger")
        return rrb.Blueprint(
            rrb.Horizontal(
                rrb.Vertical(
                    rrb.Tabs(*stacks),
                    rrb.GraphView(origin=f"{self.root}/graph", name="agents and delegations"),
                    row_shares=[3, 2],
                ),
                rrb.Vertical(rrb.Grid(*plots, grid_columns=2), ledger, row_shares=[4, 1]),
            ),
            *_panels("arm"),
        )

    async def update(self, progress: RolloutProgress) -> None:
        """Log each variant whose finished arms changed, and what is new in the arms."""
        import rerun as rr

        self._progress = progress
        listed = await self.rollouts.arms(self.rollout_id)
        changed = [t for t in progress.variants if self._finished.get(t.key, 0) != t.finished]
        balances = await self._balances(listed) if changed else {}
        for t in changed:
            self._finished[t.key] = t.finished
            ran = max(1, t.done + t.failed)
            values = {
                "reward": float(t.reward),
                "balance": float(balances.get(t.key, Decimal(0))),
                "tokens": t.tokens / ran,
                "cost_usd": t.cost_usd / ran,
            }
            if t.scored:
                values["score"] = t.score_sum / t.scored
            for metric, value in values.items():
                series = self._series(metric, t.key)
                self.recording.log(series, rr.Scalars(value), at={"arm": t.finished})
        await self._arms(listed)

    async def _balances(self, listed: Sequence[ListedArm]) -> dict[str, Decimal]:
        """Net flow into each variant's arms' agents' wallets from their own transfers."""
        from p2engine.ledger.flows import flow

        agents = {arm.id.removeprefix(f"{self.rollout_id}/"): arm.agent for arm in listed}
        found: dict[str, Decimal] = {}
        transfers = await self.rollouts.arm_transfers(self.rollout_id, self.started)
        for key, moved in transfers.items():
            agent = agents.get(key)
            if agent is not None:
                variant = key.rpartition("/")[0]
                found[variant] = found.get(variant, Decimal(0)) + flow(moved, agent).net
        return found

    async def _arms(self, listed: Sequence[ListedArm]) -> bool:
        """Follow every listed arm; whether all those that ran are listed and closed."""
        for arm in listed:
            await self.tree.follow(arm.id, group=arm.variant)
        ran = sum(t.done + t.failed for t in self._progress.variants) if self._progress else 0
        return len(listed) >= ran and all(self.tree.closed(arm.id) for arm in listed)

    async def finish(self) -> None:
        """The arms' last entries (visibility may list the last arms a moment late) and the
        ledger before and after."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VISIBILITY_WAIT_S
        while (
            not await self._arms(await self.rollouts.arms(self.rollout_id))
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.2)
        snapshots = await self.rollouts.ledger_snapshots(self.rollout_id)
        self._log_ledger(snapshots.before, snapshots.after)

    def _log_ledger(self, before: LedgerSnapshot | None, after: LedgerSnapshot | None) -> None:
        import rerun as rr

        was = {w.agent: w.balance for w in before.wallets} if before else {}
        now = {w.agent: w.balance for w in after.wallets} if after else {}
        last = self._arm()
        for agent in sorted(was.keys() | now.keys()):
            series = f"{self.root}/ledger/wallets/{entity(agent)}"
            self.recording.name_series(series, agent)
            if agent in was:
                before_value = rr.Scalars(float(was[agent]))
                self.recording.log(series, before_value, wall=self.started, at={"arm": 0})
            if agent in now:
                self.recording.log(series, rr.Scalars(float(now[agent])), at={"arm": last})
        summary = _ledger_document(was, now)
        self.recording.log(f"{self.root}/ledger/summary", summary, at={"arm": last})


def _ledger_document(was: Mapping[str, Decimal], now: Mapping[str, Decimal]) -> Any:
    import rerun as rr

    if not was and not now:
        text = "No ledger snapshots: the rollout ran without a ledger (`p2e ledger init`)."
    else:
        rows = ["| wallet | before | after | change |", "|---|---:|---:|---:|"]
        for agent in sorted(was.keys() | now.keys()):
            a, b = was.get(agent), now.get(agent)
            change = f"{b - a:+}" if a is not None and b is not None else "-"
            rows.append(
                f"| {agent} | {'-' if a is None else a} | {'-' if b is None else b} | {change} |"
            )
        text = "\n".join(rows)
    return rr.TextDocument(text, media_type=rr.MediaType.MARKDOWN)


class ConversationRecorder:
    """A conversation as `p2e conversation watch` sees it: `update` with each stack the
    watch reads, then `recording.end`."""

    def __init__(
        self,
        sinks: Sinks,
        conversations: ConversationClient,
        conversation_id: str,
        describe: Describe,
    ) -> None:
        self.conversation_id = conversation_id
        root = entity("conversations", conversation_id)
        self.recording = Recording(sinks, conversation_id, self._blueprint(root))
        self.tree = _Tree(
            self.recording,
            conversations,
            describe,
            base="conversations",
            strip="",
            graph=f"{root}/graph",
            metrics=f"{root}/metrics",
        )

    def _blueprint(self, root: str) -> Any:
        import rerun.blueprint as rrb

        metrics = [
            rrb.TimeSeriesView(origin=f"{root}/metrics/{m}", name=m) for m in CONVERSATION_METRICS
        ]
        return rrb.Blueprint(
            rrb.Horizontal(
                rrb.Vertical(
                    _stack_view(root, "stacks"),
                    rrb.GraphView(origin=f"{root}/graph", name="agents and delegations"),
                ),
                rrb.Vertical(*metrics),
            ),
            *_panels("step"),
        )

    async def update(self, stack: list[StackEntry], closed: bool) -> None:
        await self.tree.follow(self.conversation_id, stack, closed)
