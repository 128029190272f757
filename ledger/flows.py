"""A rollout's money, arm by arm, from the ledger's journal: every transfer a conversation
makes carries the conversation's id as its reference, and an arm's children have ids under
the arm's, so each transfer belongs to exactly one arm however many arms share a wallet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from p2engine.ledger.models import JournalEntry

# Journal rows one settlement reads at most: far more than any rollout's arms make.
AUDIT_LIMIT = 1_000_000


@dataclass(frozen=True)
class Flow:
    transactions: int
    net: Decimal  # into the arm's agent's wallet, less what left it


def arm_entries(entries: Iterable[JournalEntry], rollout_id: str) -> dict[str, list[JournalEntry]]:
    """The transfers and rewards of each arm (`<team>/<variant>/<label>`) of the rollout."""
    prefix = f"{rollout_id}/"
    found: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        if entry.kind == "open" or not entry.reference.startswith(prefix):
            continue
        key = "/".join(entry.reference.removeprefix(prefix).split("/")[:3])
        found.setdefault(key, []).append(entry)
    return found


def flow(entries: Iterable[JournalEntry], agent: str) -> Flow:
    """How many transfers there were, and what they moved into `agent`'s wallet, net."""
    count, net = 0, Decimal(0)
    for entry in entries:
        count += 1
        if entry.payee == agent:
            net += entry.amount
        if entry.payer == agent:
            net -= entry.amount
    return Flow(count, net)
