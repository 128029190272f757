"""How conversations look in the terminal: one line per stack entry, the stack as a table,
full replies from the artifact store, and live progress while a conversation runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from rich.table import Table

from p2engine.cli.common import note

HUMAN_POLL_S = 1.0  # how often `p2e run` looks for a delegated human agent's turn

if TYPE_CHECKING:
    from p2engine.contract.evals import EvalOutcome
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
    if entry.evaluations:
        detail += f" [score: {scores_text(entry.evaluations)}]"
    return detail


def scores_text(outcomes: Sequence[EvalOutcome]) -> str:
    """`helpful 0.80 (paid 5.00), tool_succeeded 1.00`: each score, and what it paid."""
    return ", ".join(
        f"{e.evaluator_id} {'error' if e.value is None else f'{e.value:.2f}'}"
        + (f" (paid {e.reward.amount:.2f})" if e.reward and e.reward.status == "paid" else "")
        for e in outcomes
    )


def score_summary(stack: Sequence[StackEntry], judges: str | None = None) -> str:
    """`score 0.78 (helpful 0.70 x2, tool_succeeded 1.00)`: the conversation's score (the
    mean of every evaluation) and each evaluator's part of it, from the final stack, so a
    score that landed after its step was printed is counted too. Empty with no evaluation."""
    from p2engine.workflows.evaluations import means, score

    outcomes = [o for entry in stack for o in entry.evaluations]
    if not outcomes:
        return ""
    total = score(stack)
    given = {
        k: sum(o.evaluator_id == k and o.value is not None for o in outcomes) for k in means(stack)
    }
    parts = [
        f"{k} {v:.2f}" + (f" x{given[k]}" if given[k] > 1 else "") for k, v in means(stack).items()
    ]
    if failed := sum(o.value is None for o in outcomes):
        parts.append(f"{failed} failed")
    head = "no score" if total is None else f"score {total:.2f}"
    spent = f"; judges: {judges}" if judges else ""
    return f"{head} ({', '.join(parts)}{spent})"


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


async def reply_text(settings: Settings, ref: str | None, fallback: str) -> str:
    """The full reply from the artifact store; the preview if the store lacks it (a worker
    on another machine, with a store of its own, wrote it)."""
    from p2engine.store import store_for
    from p2engine.store.base import ArtifactNotFound

    if ref:
        async with store_for(settings) as store:
            with contextlib.suppress(ArtifactNotFound):
                return (await store.get_node(ref)).text or fallback
    return fallback


def human_hint(agent_id: str, conversation: str) -> str:
    """What to run when a conversation waits for a person: `chat --as` answers in the
    conversation named or in any conversation delegated from it."""
    return f"nothing moves until {agent_id} answers: p2e chat --as {agent_id} {conversation}"


async def hint_human_waits(
    waits: Callable[[], Awaitable[list[tuple[str, str]]]], conversation: str
) -> None:
    """Until cancelled, name each human agent that a conversation delegated from
    `conversation` waits for, once (the conversation's own turns are in its stack)."""
    from temporalio.service import RPCError

    hinted: set[tuple[str, str]] = set()
    while True:
        await asyncio.sleep(HUMAN_POLL_S)
        with contextlib.suppress(RPCError):
            for wait in await waits():
                if wait not in hinted and wait[0] != conversation:
                    hinted.add(wait)
                    note(f"  {wait[0]}: {human_hint(wait[1], conversation)}")


class Progress:
    """Prints stack entries as they appear, each once, so a long conversation shows its
    progress and a fast one still shows every entry at the end."""

    def __init__(
        self, printed: int = 0, kinds: set[str] | None = None, conversation: str | None = None
    ) -> None:
        self.first = self.printed = printed  # entries before `first` are someone else's
        self.kinds = kinds  # None: every kind
        self.scored: dict[int, int] = {}  # entry index -> evaluations shown with it
        self.conversation = conversation  # named in the hint when a person must answer

    def show(self, stack: list[StackEntry]) -> None:
        for index, entry in enumerate(stack[self.first : self.printed], start=self.first):
            shown = self.scored.get(index, len(entry.evaluations))
            if len(entry.evaluations) > shown and self._shows(entry):
                late = scores_text(entry.evaluations[shown:])
                note(f"  [{entry.step}] {entry.kind}: [score: {late}]")
            self.scored[index] = len(entry.evaluations)
        self.show_turn(self.printed, stack[self.printed :])

    def show_turn(self, start: int, entries: Sequence[StackEntry]) -> None:
        """What was added to the stack (its entries from `start` on), each entry once."""
        for index, entry in enumerate(entries, start=start):
            if index < self.printed:
                continue
            if self._shows(entry):
                note(f"  {describe_entry(entry)}")
                if self.conversation and entry.waiting_for == "human":
                    note(f"  {human_hint(entry.agent_id, self.conversation)}")
            self.scored[index] = len(entry.evaluations)
        self.printed = max(self.printed, start + len(entries))

    def _shows(self, entry: StackEntry) -> bool:
        return self.kinds is None or entry.kind in self.kinds

    async def follow(self, read_stack: Callable[[], Awaitable[list[StackEntry]]]) -> None:
        """Show the stack `read_stack` returns until cancelled; a query no worker answers
        yet is tried again."""
        from temporalio.service import RPCError

        while True:
            with contextlib.suppress(RPCError):
                self.show(await read_stack())
            await asyncio.sleep(0.25)
