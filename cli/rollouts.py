"""`p2e rollout`: run a rollout file's variants side by side, follow them, compare them, and
run rollouts as scheduled batches."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    RerunOption,
    RerunSaveOption,
    RerunServeOption,
    console,
    note,
    print_json,
    run_async,
    serving,
    settings_for,
    ui_url,
    warn_without_worker,
)
from p2engine.cli.tables import Col, moment, print_table
from p2engine.contract.errors import InvalidInput
from p2engine.contract.names import status_name

if TYPE_CHECKING:
    from p2engine.contract.rollouts import ArmRecord, RolloutResult, VariantComparison
    from p2engine.runtime.rerun_view import RerunTarget, RolloutRecorder, Sinks
    from p2engine.runtime.rollouts import PreparedRollout, RolloutClient, RolloutHandle
    from p2engine.runtime.settings import Settings

app = typer.Typer(
    help="Rollouts: variants of agents run side by side and compared.", no_args_is_help=True
)
schedules = typer.Typer(
    help="Rollouts run on a schedule (Temporal Schedules).", no_args_is_help=True
)
app.add_typer(schedules, name="schedule")

FileArg = Annotated[
    Path, typer.Argument(help="A rollout file (config/rollouts/*.yml).", show_default=False)
]
RolloutArg = Annotated[str, typer.Argument(help="A rollout id (rollout-NAME or NAME).")]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Run every arm on this litellm model (e.g. scripted/default)."),
]
RepeatsOption = Annotated[
    int | None, typer.Option("--repeats", "-r", min=1, help="Runs per variant and input.")
]
ScheduleArg = Annotated[str, typer.Argument(help="A schedule id (p2e rollout schedule list).")]
REFRESH_S = 0.5


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _client(settings: Settings) -> RolloutClient:
    from p2engine.runtime.rollouts import RolloutClient

    return RolloutClient(settings)


def _prepare(
    client: RolloutClient, path: Path, model: str | None, repeats: int | None
) -> PreparedRollout:
    prepared = client.prepare(path, model=model, repeats=repeats)
    for warning in prepared.file.warnings:
        note(f"warning: {warning}")
    return prepared


# --- running ----------------------------------------------------------------------------


@app.command()
def start(
    path: FileArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show a live table as arms finish.")
    ] = False,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Print the rollout id and return.")
    ] = False,
    model: ModelOption = None,
    repeats: RepeatsOption = None,
    name: Annotated[
        str | None, typer.Option("--id", help="Rollout name (workflow id rollout-NAME).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="At the end, print the comparison as JSON.")
    ] = False,
    rerun: RerunOption = False,
    rerun_save: RerunSaveOption = None,
    rerun_serve: RerunServeOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Start a rollout: every variant of every team, on every input, `repeats` times, each
    a conversation; at the end, the comparison of the variants.

    Any --rerun option follows the rollout and logs its arms' stacks, the agents and their
    delegations, each variant's metrics and the ledger to Rerun."""
    from p2engine.runtime.rerun_view import rerun_target

    if follow and detach:
        raise InvalidInput("--follow and --detach exclude each other")
    if detach and (rerun or rerun_save is not None or rerun_serve):
        raise InvalidInput("the --rerun options follow the rollout and exclude --detach")
    target = rerun_target(rerun, rerun_save, rerun_serve)
    settings = settings_for(address, namespace)
    code = run_async(_start(settings, path, follow, detach, model, repeats, name, as_json, target))
    raise typer.Exit(code)


def start_file(path: Path, model: str | None, settings: Settings) -> int:
    """`p2e run FILE.yml`: the rollout in the file, followed live."""
    return run_async(_start(settings, path, True, False, model, None, None, False))


async def _start(
    settings: Settings,
    path: Path,
    follow: bool,
    detach: bool,
    model: str | None,
    repeats: int | None,
    name: str | None,
    as_json: bool,
    rerun: RerunTarget | None = None,
) -> int:
    client = _client(settings)
    prepared = _prepare(client, path, model, repeats)
    arms = prepared.file.plan.total
    sinks = None
    if rerun is not None:
        from p2engine.runtime.rerun_view import open_sinks

        sinks = open_sinks(rerun)
    handle = await client.start(prepared.input, name=name)
    note(f"started {handle.id}: {arms} arms, {prepared.input.spec.concurrency} at a time")
    if link := ui_url(settings, handle.id):
        note(f"web ui: {link}")
    note(f'its arms in the Web UI: filter P2eRollout="{handle.id}"')
    if detach:
        console.print(handle.id, highlight=False)
        await warn_without_worker(await client.temporal(), settings)
        return 0
    description = await handle.describe()
    recorder = None
    if sinks is not None:
        variants = [f"{v.team}/{v.variant}" for v in prepared.file.plan.variants]
        recorder = await _recorder(sinks, client, handle.id, variants, description.start_time)
    async with serving(await client.temporal(), settings):
        result = await _wait(client, handle, follow or recorder is not None, recorder)
    code = _print_result(result, as_json)
    if recorder is not None:
        await recorder.recording.end(note)
    return code


async def _recorder(
    sinks: Sinks,
    client: RolloutClient,
    rollout_id: str,
    variants: list[str],
    started: datetime,
) -> RolloutRecorder:
    """A recorder of the rollout, opened before its arms are followed; says where it goes."""
    from p2engine.cli.display import describe_entry
    from p2engine.runtime.conversations import ConversationClient
    from p2engine.runtime.rerun_view import RolloutRecorder

    conversations = ConversationClient(client.settings, await client.temporal())
    unique = list(dict.fromkeys(variants))
    recorder = RolloutRecorder(
        sinks, client, conversations, rollout_id, unique, started, describe_entry
    )
    for place in recorder.recording.places():
        note(f"rerun: {place}")
    return recorder


async def _wait(
    client: RolloutClient,
    handle: RolloutHandle,
    follow: bool,
    recorder: RolloutRecorder | None = None,
) -> RolloutResult:
    """The rollout's result; meanwhile a live table (`follow`) or a line of progress, and
    what the table shows logged to Rerun too."""
    from temporalio.service import RPCError

    from p2engine.cli.rollout_tables import live_table

    description = await handle.describe()
    started = description.start_time
    waiting = asyncio.ensure_future(handle.result())
    if follow:
        from rich.live import Live

        async def show(live: Live) -> None:
            progress = await client.progress(handle)
            flows = await client.variant_flows(handle.id, started)
            live.update(live_table(console, progress, flows).renderable())
            if recorder is not None:
                await recorder.update(progress)

        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while not waiting.done():
                with contextlib.suppress(RPCError):
                    await show(live)
                await asyncio.wait([waiting], timeout=REFRESH_S)
            with contextlib.suppress(RPCError):  # the table as the rollout ended
                await show(live)
        if not console.is_terminal:  # the last frame ends without a newline when piped
            console.line()
        if recorder is not None:
            await recorder.finish()
    else:
        last = -1
        while not waiting.done():
            with contextlib.suppress(RPCError):
                progress = await client.progress(handle)
                if progress.finished != last:
                    last = progress.finished
                    note(f"  {progress.finished}/{progress.total} arms finished")
            await asyncio.wait([waiting], timeout=REFRESH_S * 4)
    return await waiting


def _print_result(result: RolloutResult, as_json: bool) -> int:
    from p2engine.cli.rollout_tables import print_comparison

    if as_json:
        print_json(result.comparison.model_dump(mode="json"))
    else:
        print_comparison(console, result.comparison)
        for wallet in result.wallets:
            note(f"wallet {wallet.agent}: {wallet.before} -> {wallet.after}")
        console.print(f"rollout: {result.rollout_id}", highlight=False)
    failed = sum(v.failed for v in result.comparison.variants)
    return 1 if failed else 0


# --- reading ----------------------------------------------------------------------------


@app.command("list")
def list_rollouts(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 20,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List rollouts, newest first (scheduled runs too)."""
    found = run_async(_client(settings_for(address, namespace)).list_rollouts(limit))
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "arms": r.total,
            "phase": r.phase,
            "status": status_name(r.status),
            "started": r.started.isoformat(),
            "closed": r.closed.isoformat() if r.closed else None,
        }
        for r in found
    ]
    if as_json:
        print_json(rows)
        return
    columns = [
        Col("id"),
        Col("name", drop=3),
        Col("arms", "number"),
        Col("phase"),
        Col("status", drop=2),
        Col("started", drop=1),
    ]
    print_table(
        console,
        "Rollouts",
        columns,
        [
            [r.id, r.name, str(r.total), r.phase, status_name(r.status), moment(r.started)]
            for r in found
        ],
    )


@app.command()
def status(
    rollout: RolloutArg,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """How far a rollout is: arms finished, running and failed per variant."""
    settings = settings_for(address, namespace)
    raise typer.Exit(run_async(_status(settings, rollout, as_json)))


async def _status(settings: Settings, rollout: str, as_json: bool) -> int:
    from p2engine.cli.rollout_tables import live_table
    from p2engine.runtime.worker import standing_worker_present

    client = _client(settings)
    handle, description = await client.handle(rollout)
    progress = await client.final_progress(description)
    if progress is None:  # running: only its workflow knows, and a worker answers for it
        if not await standing_worker_present(await client.temporal(), settings):
            note(
                f"{handle.id} is running, but no worker serves task queue "
                f"'{settings.temporal.task_queue}': its arms wait until one does (p2e worker)"
            )
            return 1
        progress = await client.progress(handle)
    if as_json:
        data = progress.model_dump(mode="json")
        data["status"] = status_name(description.status)
        print_json(data)
        return 0
    flows = await client.variant_flows(handle.id, description.start_time)
    live_table(console, progress, flows).print(console)
    return 0


@app.command()
def show(
    rollout: RolloutArg,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Every arm of a finished or cancelled rollout: status, score, usage and errors."""
    settings = settings_for(address, namespace)
    raise typer.Exit(run_async(_show(settings, rollout, as_json)))


async def _records(client: RolloutClient, rollout: str) -> tuple[str, list[ArmRecord]]:
    handle, description = await client.handle(rollout)
    records = await client.records(description)
    if not records:
        raise InvalidInput(
            f"{handle.id} has no records yet: it is still running (p2e rollout status {handle.id})"
        )
    return handle.id, sorted(records, key=lambda r: (r.order, r.case, r.repeat))


async def _show(settings: Settings, rollout: str, as_json: bool) -> int:
    from p2engine.cli.rollout_tables import arms_table

    rollout_id, records = await _records(_client(settings), rollout)
    if as_json:
        print_json([r.model_dump(mode="json") for r in records])
        return 0
    arms_table(console, f"{rollout_id}: {len(records)} arms", records).print(console)
    return 0


@app.command()
def compare(
    rollout: RolloutArg,
    baseline: Annotated[
        str | None, typer.Option("--baseline", "-b", help="The variant to compare against.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="score, reward, cost_usd, tokens, latency_s, ...")
    ] = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Compare a rollout's variants again, against another baseline or on another metric."""
    settings = settings_for(address, namespace)
    raise typer.Exit(run_async(_compare(settings, rollout, baseline, metric, as_json)))


async def _compare(
    settings: Settings, rollout: str, baseline: str | None, metric: str | None, as_json: bool
) -> int:
    from p2engine.cli.rollout_tables import print_comparison
    from p2engine.contract.rollouts import METRICS
    from p2engine.evals.variants import compare as compare_variants
    from p2engine.evals.variants import resolve_baseline

    if metric is not None and metric not in METRICS:
        raise InvalidInput(f"unknown metric '{metric}'; metrics: {', '.join(METRICS)}")
    client = _client(settings)
    handle, description = await client.handle(rollout)
    records = await client.records(description)
    if not records:
        raise InvalidInput(f"{handle.id} has no records yet: it is still running")
    if baseline is not None and resolve_baseline(records, baseline) is None:
        known = ", ".join(dict.fromkeys(r.variant_key for r in records))
        raise InvalidInput(f"--baseline '{baseline}' names no variant; variants: {known}")
    # The file's own choices, also for a rollout that was cancelled and has no result.
    spec = (await client.started_with(handle)).spec
    comparison: VariantComparison = await asyncio.to_thread(
        compare_variants, records, metric or spec.metric, baseline or spec.baseline, spec.seed
    )
    if as_json:
        print_json(comparison.model_dump(mode="json"))
    else:
        print_comparison(console, comparison)
    return 0


@app.command()
def cancel(
    rollout: RolloutArg,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Cancel a running rollout: its running arms are cancelled, the rest never start, and
    every arm keeps a record."""
    settings = settings_for(address, namespace)

    async def run() -> None:
        client = _client(settings)
        handle, description = await client.handle(rollout)
        from temporalio.client import WorkflowExecutionStatus

        if description.status != WorkflowExecutionStatus.RUNNING:
            state = status_name(description.status)
            raise InvalidInput(f"{handle.id} is not running ({state})")
        await client.cancel(handle)
        note(f"cancel requested for {handle.id}")

    run_async(run())


@app.command()
def export(
    rollout: RolloutArg,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl or csv.")
    ] = ExportFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Every arm's record, one per line (JSON) or row (CSV), for analysis elsewhere."""
    import json

    from p2engine.cli.rollout_tables import EXPORT_FIELDS, export_row

    settings = settings_for(address, namespace)
    _, records = run_async(_records(_client(settings), rollout))
    rows = [export_row(r) for r in records]
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(output.open("w", newline="")) if output else sys.stdout
        if fmt is ExportFormat.csv:
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    if output:
        note(f"wrote {len(rows)} arms to {output}")


# --- schedules --------------------------------------------------------------------------


@schedules.command("create")
def schedule_create(
    path: FileArg,
    cron: Annotated[
        str | None, typer.Option("--cron", help='A cron expression, e.g. "0 3 * * *".')
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="An interval: 30s, 15m, 1h, 1d.")
    ] = None,
    schedule_id: Annotated[str | None, typer.Option("--id", help="Schedule name.")] = None,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            help="When a run is due while one runs: skip, buffer_one, buffer_all, "
            "cancel_other, terminate_other or allow_all.",
        ),
    ] = "skip",
    model: ModelOption = None,
    repeats: RepeatsOption = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run a rollout file on a schedule; each run is a rollout of its own (rollout list)."""
    from p2engine.runtime.rollouts import parse_every

    settings = settings_for(address, namespace)
    interval = parse_every(every) if every is not None else None
    client = _client(settings)
    prepared = _prepare(client, path, model, repeats)

    async def run() -> str:
        inp = prepared.input.model_copy(update={"ledger": await client.ledger_problem()})
        from p2engine.runtime.rollouts import PreparedRollout

        return await client.create_schedule(
            PreparedRollout(prepared.file, inp),
            schedule_id=schedule_id,
            cron=cron,
            every=interval,
            overlap=overlap,
        )

    console.print(run_async(run()), highlight=False)


@schedules.command("list")
def schedule_list(
    as_json: JsonOption = False, address: AddressOption = None, namespace: NamespaceOption = None
) -> None:
    """List the rollout schedules."""
    settings = settings_for(address, namespace)

    async def run() -> list[dict[str, Any]]:
        rows = []
        async for listed in _client(settings).schedules():
            info = listed.info
            rows.append(
                {
                    "id": listed.id,
                    "paused": listed.schedule.state.paused if listed.schedule else None,
                    "recent": [
                        a.scheduled_at.isoformat() for a in (info.recent_actions if info else [])
                    ][-3:],
                    "next": [t.isoformat() for t in (info.next_action_times if info else [])][:1],
                }
            )
        return rows

    rows = run_async(run())
    if as_json:
        print_json(rows)
        return
    print_table(
        console,
        "Rollout schedules",
        [Col("id"), Col("paused"), Col("next run", drop=2), Col("last run", drop=1)],
        [
            [
                row["id"],
                "yes" if row["paused"] else "no",
                moment((row["next"] or [None])[0]),
                moment((row["recent"] or [None])[-1]),
            ]
            for row in rows
        ],
    )


@schedules.command("describe")
def schedule_describe(
    schedule_id: ScheduleArg,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """A schedule's spec, state and recent runs."""
    settings = settings_for(address, namespace)

    async def run() -> dict[str, Any]:
        from p2engine.runtime.rollouts import schedule_summary

        client = _client(settings)
        _, description = await client.schedule(schedule_id)
        found = schedule_summary(description, await client.schedule_file(description))
        return {
            "id": found.id,
            "file": found.file,
            "cron": found.cron,
            "every": [str(every) for every in found.every],
            "overlap": found.overlap,
            "paused": found.paused,
            "note": found.note,
            "runs": found.runs,
            "skipped": found.skipped,
            "running": found.running,
            "recent": [{"due": due.isoformat(), "rollout": rid} for due, rid in found.recent],
            "next": [t.isoformat() for t in found.upcoming],
        }

    data = run_async(run())
    if as_json:
        print_json(data)
        return
    _print_schedule(data)


def _print_schedule(data: dict[str, Any]) -> None:
    """A schedule as a reader wants it: values as text, lists one item a line."""
    when = ", ".join([*data["cron"], *(f"every {e}" for e in data["every"])]) or "-"
    lines = [
        f"schedule {data['id']}",
        f"  file:     {data['file'] or '-'}",
        f"  runs:     {when} (overlap: {data['overlap']})",
        f"  state:    {'paused' if data['paused'] else 'active'}",
        f"  note:     {data['note'] or '-'}",
        f"  started:  {data['runs']} rollouts, {data['skipped']} skipped for overlap",
        f"  running:  {', '.join(data['running']) or '-'}",
        f"  next:     {', '.join(moment(t) for t in data['next']) or '-'}",
        "  recent:" + ("" if data["recent"] else "   -"),
        *(f"    {moment(r['due'])}  {r['rollout']}" for r in data["recent"]),
    ]
    for line in lines:
        console.print(line, highlight=False)


def _on_schedule(schedule_id: str, settings: Settings, action: str, **kwargs: Any) -> None:
    async def run() -> None:
        handle, _ = await _client(settings).schedule(schedule_id)
        await getattr(handle, action)(**kwargs)

    run_async(run())
    note(f"{schedule_id}: {action} done")


@schedules.command("pause")
def schedule_pause(
    schedule_id: ScheduleArg,
    reason: Annotated[str | None, typer.Option("--note", help="Why, for the record.")] = None,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Pause a schedule: no run starts until it is unpaused."""
    _on_schedule(schedule_id, settings_for(address, namespace), "pause", note=reason)


@schedules.command("unpause")
def schedule_unpause(
    schedule_id: ScheduleArg, address: AddressOption = None, namespace: NamespaceOption = None
) -> None:
    """Let a paused schedule run again."""
    _on_schedule(schedule_id, settings_for(address, namespace), "unpause")


@schedules.command("trigger")
def schedule_trigger(
    schedule_id: ScheduleArg, address: AddressOption = None, namespace: NamespaceOption = None
) -> None:
    """Start a run now, as if it were due (the overlap policy applies)."""
    _on_schedule(schedule_id, settings_for(address, namespace), "trigger")


@schedules.command("backfill")
def schedule_backfill(
    schedule_id: ScheduleArg,
    start_at: Annotated[datetime, typer.Option("--start", help="From this time (ISO 8601, UTC).")],
    end_at: Annotated[datetime, typer.Option("--end", help="Up to this time.")],
    overlap: Annotated[str, typer.Option("--overlap", help="As for create.")] = "allow_all",
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run the rollouts that would have been due between two times."""
    from datetime import UTC

    settings = settings_for(address, namespace)

    async def run() -> None:
        client = _client(settings)
        handle, _ = await client.schedule(schedule_id)
        start = start_at if start_at.tzinfo else start_at.replace(tzinfo=UTC)
        end = end_at if end_at.tzinfo else end_at.replace(tzinfo=UTC)
        await client.backfill(handle, start, end, overlap)

    run_async(run())
    note(f"{schedule_id}: backfill requested")


@schedules.command("delete")
def schedule_delete(
    schedule_id: ScheduleArg, address: AddressOption = None, namespace: NamespaceOption = None
) -> None:
    """Delete a schedule; the rollouts it started stay."""
    _on_schedule(schedule_id, settings_for(address, namespace), "delete")
