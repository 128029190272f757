"""`p2e replay`: replay recorded histories against the current code, and show what a
conversation held at any step of a past run, computed by replaying, never by re-running."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    print_json,
    run_async,
    settings_for,
)
from p2engine.cli.display import stack_table
from p2engine.contract.errors import InvalidInput

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory

    from p2engine.runtime.replay import Replayed
    from p2engine.runtime.settings import Settings

QUERIED = 1000  # the most runs `--query` replays


def replay(
    workflow_id: Annotated[
        str | None, typer.Argument(help="A workflow id (conv-NAME); or --history / --query.")
    ] = None,
    history_file: Annotated[
        Path | None,
        typer.Option("--history", help="A downloaded history (Web UI, temporal workflow show)."),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Replay every run a visibility query finds.")
    ] = None,
    step: Annotated[
        int | None, typer.Option("--step", help="Show the state and stack at the end of step N.")
    ] = None,
    until_event: Annotated[
        int | None, typer.Option("--until-event", help="Show them as of event E.")
    ] = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Replay recorded runs with the current workflow code.

    Exit 0 when they replay, 1 when the code no longer issues the recorded commands (naming
    the first event it could not match). Nothing runs again: every result comes from the
    history."""
    sources = [workflow_id is not None, history_file is not None, query is not None]
    if sum(sources) != 1:
        raise InvalidInput("name one workflow id, or --history FILE, or --query QUERY")
    if step is not None and until_event is not None:
        raise InvalidInput("--step and --until-event each pick a point: give one")
    if query is not None and (step is not None or until_event is not None):
        raise InvalidInput("--step and --until-event show one run; not with --query")
    from p2engine.runtime.replay import failures_in_the_verdict_only

    settings = settings_for(address, namespace)
    with failures_in_the_verdict_only():
        if query is not None:
            code = _replay_many(settings, query, as_json)
        else:
            code = _replay_one_and_show(
                settings, workflow_id, history_file, step, until_event, as_json
            )
    raise typer.Exit(code)


def _replay_one_and_show(
    settings: Settings,
    workflow_id: str | None,
    history_file: Path | None,
    step: int | None,
    until: int | None,
    as_json: bool,
) -> int:
    history, replayed = run_async(_replay_one(settings, workflow_id, history_file, until))
    at = _point(replayed, step, until)
    verdict = _verdict(history.workflow_id, replayed)
    if as_json:
        print_json({**verdict, **({"at": at} if at else {})})
    else:
        console.print(_line(verdict), highlight=False)
        if at:
            _show_point(at)
    return 0 if replayed.failure is None else 1


async def _replay_one(
    settings: Settings, workflow_id: str | None, history_file: Path | None, until: int | None
) -> tuple[WorkflowHistory, Replayed]:
    from p2engine.runtime.replay import HistoryClient, history_from_file, replay, until_event

    if history_file is not None:
        if not history_file.is_file():
            raise InvalidInput(f"{history_file}: no such file")
        history = history_from_file(history_file)
    else:
        assert workflow_id is not None
        history = await HistoryClient(settings).history(workflow_id)
    if until is not None:
        last = history.events[-1].event_id
        if not 1 <= until <= last:
            raise InvalidInput(f"--until-event must be 1 to {last}, the events recorded")
        history = until_event(history, until)
    return history, await replay(history)


def _replay_many(settings: Settings, query: str, as_json: bool) -> int:
    rows = run_async(_replays(settings, query))
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("no workflow matches the query", highlight=False)
    for row in [] if as_json else rows:
        console.print(_line(row), highlight=False)
    return 1 if any(not row["replays"] for row in rows) else 0


async def _replays(settings: Settings, query: str) -> list[dict[str, Any]]:
    from p2engine.runtime.replay import HistoryClient, replay

    return [
        _verdict(history.workflow_id, await replay(history))
        async for history in HistoryClient(settings).matching(query, QUERIED)
    ]


def _verdict(workflow_id: str, replayed: Replayed) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "replays": replayed.failure is None,
        "event_id": replayed.event_id,
        "problem": replayed.problem,
    }


def _line(verdict: dict[str, Any]) -> str:
    if verdict["replays"]:
        return f"{verdict['workflow_id']}: replays with this code"
    where = f" at event {verdict['event_id']}" if verdict["event_id"] else ""
    return f"{verdict['workflow_id']}: does not replay{where}: {verdict['problem']}"


def _point(replayed: Replayed, step: int | None, until: int | None) -> dict[str, Any] | None:
    """The conversation's FSM state and stack at the point asked for, from the replay."""
    from p2engine.runtime.replay import conversation_at

    if step is None and until is None:
        return None
    point = conversation_at(replayed, step)
    return {
        "state": point.state,
        "step": point.step,
        "waiting_for": point.waiting_for,
        "usage": point.usage.model_dump(),
        "stack": [entry.model_dump(mode="json") for entry in point.stack],
    }


def _show_point(at: dict[str, Any]) -> None:
    from p2engine.contract.models import StackEntry

    waiting = f", waiting for its {at['waiting_for']}" if at["waiting_for"] else ""
    console.print(f"state {at['state']} at step {at['step']}{waiting}", highlight=False)
    stack = [StackEntry.model_validate(e) for e in at["stack"]]
    console.print(stack_table(f"Stack at step {at['step']}", stack))
