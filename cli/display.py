"""How conversations look in the terminal: one line per stack entry, the stack as a table,
full replies from the artifact store, and live progress while a conversation runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.table import Table

from p2engine.cli.common import note

if TYPE_CHECKING:
    from p2engine.contract.models import StackEntry
    from p2engine.runtime.settings import Settings


def entry_detail(entry: StackEntry) -> str:
    flags = [entry.status, "cached" if entry.cached else None, "penalty" if entry.penalty else None]
    shown = "".join(f"[{flag}] " for flag in flags if flag)
    detail = shown + entry.preview
    if entry.reason:
        detail = f"{entry.reason}: {detail}" if detail else entry.reason
    if entry.child_id:
        detail += f" (child {entry.child_id})"
    if scores := [
        f"{e.evaluator_id} {'error' if e.value is None else f'{e.value:.2f}'}"
        for e in entry.evaluations
    ]:
        detail += f" [score: {', '.join(scores)}]"
    return detail


def describe_entry(entry: StackEntry) -> str:
    return f"[{entry.step}] {entry.kind}: {entry_detail(entry)}"


def stack_table(title: str, stack: list[StackEntry]) -> Table:
    table = Table(title=title)
    for column in ("step", "state", "agent", "detail", "ref"):
        table.add_column(column)
    for entry in stack:
        table.add_row(
            str(entry.step),
            entry.kind,
            entry.agent_id,
            entry_detail(entry),
            (entry.ref or "")[:12],
        )
    return table


def reply_text(settings: Settings, ref: str | None, fallback: str) -> str:
    """The full reply from the artifact store; the preview if this machine lacks it."""
    from p2engine.store.artifacts import ArtifactDirectory, ArtifactNotFound

    if ref:
        with contextlib.suppress(ArtifactNotFound):
            return ArtifactDirectory(settings.artifacts_dir).get_node(ref).text or fallback
    return fallback


class Progress:
    """Prints stack entries as they appear, each once, so a long conversation shows its
    progress and a fast one still shows every entry at the end."""

    def __init__(self, printed: int = 0, kinds: set[str] | None = None) -> None:
        self.printed = printed
        self.kinds = kinds  # None: every kind

    def show(self, stack: list[StackEntry]) -> None:
        for entry in stack[self.printed :]:
            if self.kinds is None or entry.kind in self.kinds:
                note(f"  {describe_entry(entry)}")
        self.printed = max(self.printed, len(stack))

    async def follow(self, read_stack: Callable[[], Awaitable[list[StackEntry]]]) -> None:
        """Show the stack `read_stack` returns until cancelled; a query no worker answers
        yet is tried again."""
        from temporalio.service import RPCError

        while True:
            with contextlib.suppress(RPCError):
                self.show(await read_stack())
            await asyncio.sleep(0.25)
