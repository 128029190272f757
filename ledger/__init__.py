"""Agent wallets and transfers: one async interface, embedded SQLite and Canton backends."""

from __future__ import annotations

from pathlib import Path

from p2engine.ledger.base import Ledger
from p2engine.ledger.config import LedgerSettings


def open_ledger(settings: LedgerSettings, state_dir: Path, create: bool = False) -> Ledger:
    """The backend the settings choose; Canton loads only when it is configured. Only
    `create` (`p2e ledger init`) makes the embedded ledger's file, where none exists."""
    if settings.backend == "canton":
        from p2engine.ledger.canton import CantonLedger

        return CantonLedger(settings.canton, settings.max_transfer)
    from p2engine.ledger.embedded import EmbeddedLedger

    return EmbeddedLedger(state_dir / "ledger.db", settings.max_transfer, create=create)
