"""The one interface every ledger backend implements."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from p2engine.ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerMetrics,
    Receipt,
    TransferKind,
    VerifyReport,
    Wallet,
)


class Ledger(Protocol):
    """Agent wallets and transfers. A transfer is idempotent on `transfer_id`: repeating it
    with the same details returns the original receipt, with other details raises
    DuplicateTransfer. Every method raises a `ledger.errors` error on failure."""

    name: str

    async def open_wallet(self, agent: str, initial: Decimal) -> tuple[Wallet, bool]:
        """Open the agent's wallet with `initial` units; an existing one is left as it is.
        Returns the wallet and whether it was opened now."""
        ...

    async def balance(self, agent: str) -> Decimal: ...

    async def transfer(
        self,
        transfer_id: str,
        payer: str,
        payee: str,
        amount: Decimal,
        reason: str = "",
        reference: str = "",
        kind: TransferKind = "transfer",
    ) -> Receipt: ...

    async def get_transfer(self, transfer_id: str) -> Receipt | None: ...

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        """The agent's transfers, newest first."""
        ...

    async def overview(self) -> list[Wallet]: ...

    async def metrics(self) -> LedgerMetrics: ...

    async def audit(
        self, since: datetime | None = None, kind: EntryKind | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        """Journal rows in order, optionally from a time on and of one kind."""
        ...

    async def verify(self) -> VerifyReport:
        """Recompute the journal's hash chain, and check every balance and receipt the other
        methods read against the journal; damage is a report, not an error."""
        ...

    async def close(self) -> None: ...
