"""Rollout throughput and worker memory: N arms of a 3-step conversation with the scripted
model (agent_alpha, "What's the weather in Paris?": model, tool, model) run by a
RolloutWorkflow on one private dev server and one worker process, against a baseline of
the same conversations started from the client, without a rollout parent.

Throughput: a rollout's wall time runs from `RolloutClient.start` to its result, so the
rollout's own bookkeeping (the parent's workflow tasks, starting each child, storing the
records, continuing as new every `arms_per_run` arms, settling and comparing) is in it.
The baseline starts the very conversations the rollout's arms are (the same input, id
form, search attributes and summary) as top-level workflows through a window of the same
size, and waits for each result: what is left between the two is the parent. (Not through
`ConversationClient.start`: its generated ids have 16 random bits per second, which collide
at these rates.) The machine is noisy, so the two take turns (rollout, baseline, baseline,
rollout, ...) on the same server and worker, and the ratio rollout/baseline is the figure
to read; 25 conv/s is the absolute target. Beside the rates: the CPU time per conversation
of the worker, the dev server and this client (/proc/<pid>/stat), which noise moves less
than wall time, and from the parent's history its size, its workflow tasks and how long
each arm's child took to start on the server against how long it ran.

Memory: the worker is a subprocess (`python -m p2engine.cli.main worker`, the command users run,
pointed at the private server by its environment and given a settings file of defaults),
so neither the benchmark's client nor the dev server counts. A fresh worker serves each
memory run: a warm-up rollout, its RSS read, then the measured rollout; the worker's peak
is the kernel's high-water mark (VmHWM in /proc/<pid>/status, so Linux only), exact where
sampling would miss short peaks. A rollout continues as new every `arms_per_run` arms, so
the peak of a 2,000-arm rollout should be that of a 200-arm one.

    python -m bench.rollout [--arms N] [--concurrency C] [--rounds R] [--memory] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from p2engine.contract.names import SETTLE_ROLLOUT
from p2engine.contract.rollouts import DEFAULT_MAX_ARMS, RolloutInput, parse_records
from p2engine.contract.states import FinishReason
from p2engine.runtime.rollouts import RolloutClient, RolloutHandle
from p2engine.runtime.settings import ENV_VARS, PROJECT_ROOT, Settings
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import standing_worker_present
from p2engine.store import store_for
from p2engine.workflows import arms
from p2engine.workflows.conversation import ConversationWorkflow

AGENT = "agent_alpha"
MESSAGE = "What's the weather in Paris?"  # user message, tool call, tool result, reply
STEPS = 3  # ConversationResult.steps of that conversation on the scripted model
MODEL = "scripted/default"
TARGET_RATE = 25.0  # conversations per second, rollout bookkeeping included
WARM_UP_REPEATS = 2  # repeats of every variant in the warm-up rollout and baseline


@dataclass(frozen=True)
class Run:
    kind: str  # "rollout" or "baseline"
    arms: int
    wall_s: float
    latencies_s: list[float]  # each conversation's, from its start to its result
    cpu_s: dict[str, float]  # CPU time of the worker, the server and this client

    @property
    def rate(self) -> float:
        return self.arms / self.wall_s


@dataclass(frozen=True)
class History:
    """The parent's recorded runs (one per continue-as-new) and where its time went."""

    events: list[int]
    bytes: list[int]
    workflow_tasks: int
    task_wait_ms: float  # mean workflow task schedule-to-start
    task_work_ms: float  # mean workflow task start-to-complete, queueing in the worker too
    settle_s: float  # the settle activity, scheduled to completed
    start_delays_s: list[float]  # per arm: start initiated to child started, on the server
    runs_s: list[float]  # per arm: child started to completed
    span_s: float  # the runs' first event to their last, continue-as-new gaps included

    @property
    def running(self) -> float:
        """How many children ran at a time on average, of the `concurrency` slots."""
        return sum(self.runs_s) / self.span_s


def write_rollout(directory: Path, variants: int, concurrency: int) -> Path:
    """One team of `variants` identical variants of the 3-step conversation; the arm count
    is `variants` x the repeats `RolloutClient.prepare` is given."""
    path = directory / f"bench-rollout-c{concurrency}.yml"
    spec = {
        "repeats": 1,
        "concurrency": concurrency,
        "max_arms": DEFAULT_MAX_ARMS,
        "teams": {
            "desk": {
                "initial_message": MESSAGE,
                "base": {"agent_id": AGENT},
                "variants": [{"id": f"v{n:02d}"} for n in range(variants)],
            }
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_bytes(pid: int, field: str) -> int:
    """A `kB` figure of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]

    def rss(self) -> int:
        return proc_status_bytes(self.process.pid, "VmRSS")

    def peak(self) -> int:
        return proc_status_bytes(self.process.pid, "VmHWM")


@asynccontextmanager
async def worker_process(settings: Settings, client: Client) -> AsyncIterator[WorkerProcess]:
    """`p2e worker` in a subprocess on the private server's queue, with every setting at its
    default as the benchmark's own (runtime/testbed.py), whatever this shell exports."""
    config = settings.state_dir / "bench-p2e.yaml"
    config.write_text("# every setting at its default, as runtime/testbed.py's\n{}\n")
    assert settings.temporal.address is not None
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and k != "P2E_CONFIG"}
    env |= {
        "P2E_CONFIG": str(config),
        "P2E_STATE_DIR": str(settings.state_dir),
        "TEMPORAL_ADDRESS": settings.temporal.address,
        "TEMPORAL_NAMESPACE": settings.temporal.namespace,
        "P2E_TASK_QUEUE": settings.temporal.task_queue,
    }
    log = settings.state_dir / "bench-worker.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "p2engine.cli.main", "worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not await standing_worker_present(client, settings):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the worker did not come up:\n{tail}")
            await asyncio.sleep(0.2)
        yield WorkerProcess(process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


class Bench:
    def __init__(self, settings: Settings, client: Client, args: argparse.Namespace) -> None:
        self.settings = settings
        self.client = client
        self.args = args
        self.rollouts = RolloutClient(settings, client)
        self.file = write_rollout(settings.state_dir, args.variants, args.concurrency)
        self.started = 0
        self.pids: dict[str, int] = {}  # "server" and, while one runs, "worker"

    def cpu(self) -> dict[str, float]:
        used = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return used | {"client": time.process_time()}

    def cpu_since(self, before: dict[str, float]) -> dict[str, float]:
        return {name: used - before[name] for name, used in self.cpu().items()}

    def prepare(self, total: int) -> RolloutInput:
        inp = self.rollouts.prepare(self.file, model=MODEL, repeats=total // self.args.variants)
        input_ = inp.input
        if self.args.arms_per_run is not None:
            input_ = input_.model_copy(update={"arms_per_run": self.args.arms_per_run})
        return input_

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[WorkerProcess]:
        async with worker_process(self.settings, self.client) as worker:
            self.pids["worker"] = worker.process.pid
            try:
                yield worker
            finally:
                del self.pids["worker"]

    def name(self, kind: str) -> str:
        self.started += 1
        return f"bench-{kind}-{self.started}"

    async def rollout(self, inp: RolloutInput) -> tuple[Run, RolloutHandle]:
        begun, cpu = time.perf_counter(), self.cpu()
        handle = await self.rollouts.start(inp, name=self.name("rollout"))
        result = await handle.result()
        wall, used = time.perf_counter() - begun, self.cpu_since(cpu)
        async with store_for(self.settings) as store:
            records = parse_records(await store.get_bytes(result.records_ref))
        wrong = [r for r in records if r.status != "done" or r.steps != STEPS]
        if len(records) != result.total or wrong:
            first = wrong[0] if wrong else None
            raise RuntimeError(
                f"{handle.id}: {len(records)} records of {result.total}, {len(wrong)} not "
                f"done in {STEPS} steps (first: {first})"
            )
        return Run("rollout", len(records), wall, [r.latency_s for r in records], used), handle

    async def baseline(self, inp: RolloutInput) -> Run:
        """The rollout's arms started from here, each as the rollout would start it but with
        no parent, `concurrency` at a time."""
        prefix = self.name("baseline")
        plan = arms.arm_plan(inp)
        window = asyncio.Semaphore(inp.spec.concurrency)

        async def one(index: int) -> float:
            async with window:
                begun = time.perf_counter()
                arm = plan.arm(index)
                handle = await self.client.start_workflow(
                    ConversationWorkflow.run,
                    arms.arm_input(inp, arm),
                    id=arms.arm_id(prefix, arm),
                    task_queue=self.settings.temporal.task_queue,
                    search_attributes=arms.arm_search_attributes(prefix, arm),
                    static_summary=arms.arm_summary(arm),
                    execution_timeout=arms.arm_timeout(inp.spec, arm),
                )
                result = await handle.result()
                if result.reason is not FinishReason.DONE or result.steps != STEPS:
                    raise RuntimeError(f"{handle.id}: {result.reason} in {result.steps} steps")
                return time.perf_counter() - begun

        begun, cpu = time.perf_counter(), self.cpu()
        latencies = await asyncio.gather(*(one(i) for i in range(plan.total)))
        wall, used = time.perf_counter() - begun, self.cpu_since(cpu)
        return Run("baseline", plan.total, wall, list(latencies), used)

    async def warm_up(self) -> None:
        """Imports, the sandbox, sticky queues, the server's caches: a small run of each."""
        inp = self.prepare(WARM_UP_REPEATS * self.args.variants)
        await self.rollout(inp)
        await self.baseline(inp)

    async def history(self, handle: RolloutHandle) -> History:
        events: list[int] = []
        sizes: list[int] = []
        waits: list[float] = []
        works: list[float] = []
        settle_s = 0.0
        delays: list[float] = []
        runs: list[float] = []
        span: list[float] = []
        run_id = handle.first_execution_run_id or handle.run_id
        while run_id:
            run = self.client.get_workflow_handle(handle.id, run_id=run_id)
            recorded = list((await run.fetch_history()).events)
            events.append(len(recorded))
            sizes.append(sum(e.ByteSize() for e in recorded))
            waits += _task_gaps(recorded, "scheduled")
            works += _task_gaps(recorded, "started")
            settle_s += _settle_s(recorded)
            arm_delays, arm_runs = _arm_times(recorded)
            delays += arm_delays
            runs += arm_runs
            span += [_seconds(recorded[0]), _seconds(recorded[-1])]
            last = recorded[-1]
            attributes = last.workflow_execution_continued_as_new_event_attributes
            continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            run_id = attributes.new_execution_run_id if continued else None
        return History(
            events,
            sizes,
            len(works),
            statistics.fmean(waits) * 1000,
            statistics.fmean(works) * 1000,
            settle_s,
            delays,
            runs,
            max(span) - min(span),
        )


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToMicroseconds() / 1e6


def _task_gaps(events: Sequence[HistoryEvent], since: str) -> list[float]:
    """Per workflow task: scheduled-to-started ("scheduled") or started-to-completed
    ("started"), in seconds."""
    by_id = {e.event_id: e for e in events}
    gaps = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and since == "scheduled":
            scheduled = by_id[event.workflow_task_started_event_attributes.scheduled_event_id]
            gaps.append(_seconds(event) - _seconds(scheduled))
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and since == "started":
            started = by_id[event.workflow_task_completed_event_attributes.started_event_id]
            gaps.append(_seconds(event) - _seconds(started))
    return gaps


def _arm_times(events: Sequence[HistoryEvent]) -> tuple[list[float], list[float]]:
    """Per child of one run: initiated to started, and started to completed (seconds)."""
    initiated: dict[int, float] = {}
    started: dict[int, float] = {}
    delays, runs = [], []
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            initiated[event.event_id] = _seconds(event)
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            at = event.child_workflow_execution_started_event_attributes.initiated_event_id
            started[at] = _seconds(event)
            delays.append(started[at] - initiated[at])
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            at = event.child_workflow_execution_completed_event_attributes.initiated_event_id
            runs.append(_seconds(event) - started[at])
    return delays, runs


def _settle_s(events: Sequence[HistoryEvent]) -> float:
    by_id = {e.event_id: e for e in events}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = by_id[event.activity_task_completed_event_attributes.scheduled_event_id]
            name = scheduled.activity_task_scheduled_event_attributes.activity_type.name
            if name == SETTLE_ROLLOUT:
                return _seconds(event) - _seconds(scheduled)
    return 0.0


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


async def throughput(bench: Bench) -> None:
    args = bench.args
    inp = bench.prepare(args.arms)
    runs: dict[str, list[Run]] = {"rollout": [], "baseline": []}
    histories: list[History] = []
    async with bench.serving() as worker:
        await bench.warm_up()
        for round_number in range(args.rounds):
            order = ["rollout", "baseline"]
            for kind in order if round_number % 2 == 0 else order[::-1]:
                if kind == "rollout":
                    run, handle = await bench.rollout(inp)
                    histories.append(await bench.history(handle))
                else:
                    run = await bench.baseline(inp)
                runs[kind].append(run)
                print(
                    f"round {round_number + 1}/{args.rounds} {kind}: {run.arms} arms in "
                    f"{run.wall_s:.1f} s = {run.rate:.1f} conv/s",
                    file=sys.stderr,
                )
        peak = worker.peak()

    def total(kind: str) -> tuple[float, float]:
        wall = sum(r.wall_s for r in runs[kind])
        return wall / args.rounds, sum(r.arms for r in runs[kind]) / wall

    (rollout_s, rollout_rate), (baseline_s, baseline_rate) = total("rollout"), total("baseline")
    per_round = "" if args.rounds == 1 else f" (mean of {args.rounds} rounds)"
    print(
        f"conversation: {AGENT} {MESSAGE!r} on {MODEL}, {STEPS} steps; {args.variants} variants, "
        f"concurrency {args.concurrency}, arms_per_run {inp.arms_per_run}, one worker process"
    )
    print(
        f"rollout: {args.arms} arms in {rollout_s:.1f} s = {rollout_rate:.1f} conv/s; "
        f"baseline (no parent): {baseline_s:.1f} s = {baseline_rate:.1f} conv/s; "
        f"ratio {rollout_rate / baseline_rate:.2f}{per_round}"
    )
    for kind, found in runs.items():
        latencies = [x for r in found for x in r.latencies_s]
        print(
            f"{kind}: conversation start-to-result median "
            f"{statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    for kind, found in runs.items():
        used = {name: sum(r.cpu_s[name] for r in found) for name in found[0].cpu_s}
        arms_run = sum(r.arms for r in found)
        parts = [f"{name} {seconds / arms_run * 1000:.1f} ms" for name, seconds in used.items()]
        print(f"{kind}: CPU per conversation: {', '.join(parts)}")
    first = histories[0]
    print(
        f"rollout parent: {len(first.events)} runs of {', '.join(map(str, first.events))} "
        f"events ({', '.join(f'{b / 1024:.0f} KB' for b in first.bytes)}); "
        f"{first.workflow_tasks} workflow tasks, mean wait {first.task_wait_ms:.1f} ms, "
        f"mean work {first.task_work_ms:.1f} ms; settle {first.settle_s:.2f} s"
    )
    print(
        f"rollout arms: child start (initiated to started) median "
        f"{statistics.median(first.start_delays_s) * 1000:.0f} ms, max "
        f"{max(first.start_delays_s) * 1000:.0f} ms; child run median "
        f"{statistics.median(first.runs_s) * 1000:.0f} ms; {first.running:.1f} of "
        f"{args.concurrency} slots running on average"
    )
    print(f"worker peak RSS (VmHWM) over the throughput runs: {mib(peak)}")
    met = rollout_rate >= TARGET_RATE
    print(f"target {TARGET_RATE:.0f} conv/s: {'met' if met else 'NOT met'}")


async def memory(bench: Bench) -> None:
    """Each size on a fresh worker: warm-up, RSS, the rollout, the high-water mark."""
    figures: dict[int, tuple[int, int]] = {}
    for size in bench.args.memory_arms:
        inp = bench.prepare(size)
        async with bench.serving() as worker:
            await bench.warm_up()
            before = worker.rss()
            run, handle = await bench.rollout(inp)
            history = await bench.history(handle)
            figures[size] = (before, worker.peak())
        print(
            f"memory run {size} arms: {run.rate:.1f} conv/s, {len(history.events)} runs; "
            f"RSS after warm-up {mib(before)}, peak {mib(figures[size][1])}",
            file=sys.stderr,
        )
    small, large = bench.args.memory_arms
    parts = [
        f"{size} arms {mib(peak)} (+{mib(peak - before)} over warm-up)"
        for size, (before, peak) in figures.items()
    ]
    ratio = figures[large][1] / figures[small][1]
    growth = (figures[large][1] - figures[large][0]) / max(1, figures[small][1] - figures[small][0])
    print(f"worker peak RSS: {'; '.join(parts)}")
    print(f"peak {large}/{small}: {ratio:.2f}; growth over warm-up {large}/{small}: {growth:.2f}")


async def main_async(args: argparse.Namespace, state_dir: Path) -> None:
    async with private_temporal(state_dir, "bench") as temporal:
        bench = Bench(temporal.settings, temporal.client, args)
        if (record := temporal.server.record()) is not None:
            bench.pids["server"] = record.pid
        if not args.skip_throughput:
            await throughput(bench)
        if args.memory:
            await memory(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=int, default=1000, help="arms per run (default 1000)")
    parser.add_argument("--concurrency", type=int, default=50, help="the window (default 50)")
    parser.add_argument("--variants", type=int, default=10, help="the team's (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="of each, in turn (default 2)")
    parser.add_argument("--arms-per-run", type=int, default=None, help="default the contract's")
    parser.add_argument("--memory", action="store_true", help="peak worker RSS, 200 vs 2000")
    parser.add_argument(
        "--memory-arms",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[200, 2000],
        help="the two sizes of --memory (default 200,2000)",
    )
    parser.add_argument("--skip-throughput", action="store_true", help="with --memory only")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.arms, args.concurrency, args.rounds = 100, 20, 1
        args.memory_arms, args.arms_per_run = [40, 200], args.arms_per_run or 50
    if len(args.memory_arms) != 2 or args.memory_arms[0] == args.memory_arms[1]:
        parser.error("--memory-arms takes two different sizes, like 200,2000")
    if min(args.arms, args.concurrency, args.variants, args.rounds, *args.memory_arms) < 1:
        parser.error("every count must be >= 1")
    if any(n % args.variants for n in (args.arms, *args.memory_arms)):
        parser.error(f"--arms and --memory-arms must be multiples of --variants ({args.variants})")
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as state_dir:
        asyncio.run(main_async(args, Path(state_dir)))


if __name__ == "__main__":
    main()
