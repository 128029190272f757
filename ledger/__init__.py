"""Agent wallets and transfers: one async interface; embedded SQLite, PostgreSQL and Canton
backends."""

from __future__ import annotations

from pathlib import Path

from p2engine.ledger.base import Ledger
from p2engine.ledger.config import LedgerSettings


def open_ledger(
    settings: LedgerSettings,
    state_dir: Path,
    create: bool = False,
    database_url: str | None = None,
) -> Ledger:
    """The backend the settings choose: Canton when configured, else PostgreSQL when a
    database URL is given, else the embedded ledger; Canton and PostgreSQL load only when
    chosen. Only `create` (`p2e ledger init`) makes the embedded ledger's file, where none
    exists; PostgreSQL makes its tables on first use."""
    if settings.backend == "canton":
        from p2engine.ledger.canton import CantonLedger

        return CantonLedger(settings.canton, settings.max_transfer)
    if database_url:
        from p2engine.ledger.postgres import PostgresLedger

        return PostgresLedger(database_url, settings.max_transfer)
    from p2engine.ledger.embedded import EmbeddedLedger

    return EmbeddedLedger(state_dir / "ledger.db", settings.max_transfer, create=create)
