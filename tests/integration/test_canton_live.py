"""CantonLedger against a live Canton 3.4+ participant; skipped unless P2E_CANTON_URL is set.

    P2E_CANTON_URL=http://localhost:6864          # the participant's JSON Ledger API
    P2E_CANTON_DAR=daml/.daml/dist/p2engine-ledger-0.1.0.dar   # uploaded first, if set
    P2E_CANTON_TOKEN=... or P2E_CANTON_SECRET=... # only if the participant checks tokens

Wallet names are unique per run, since a participant keeps its contracts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from p2engine.ledger.canton import CantonLedger
from p2engine.ledger.config import CantonSettings
from p2engine.ledger.errors import DuplicateTransfer, InsufficientFunds, UnknownWallet

pytestmark = pytest.mark.skipif(
    not os.environ.get("P2E_CANTON_URL"), reason="set P2E_CANTON_URL to test against Canton"
)


@pytest.fixture()
async def canton() -> AsyncIterator[CantonLedger]:
    settings = CantonSettings(
        url=os.environ["P2E_CANTON_URL"],
        token=os.environ.get("P2E_CANTON_TOKEN") or None,
        hmac_secret=os.environ.get("P2E_CANTON_SECRET") or None,
        user_id=os.environ.get("P2E_CANTON_USER", "p2engine"),
        timeout_s=30,
    )
    ledger = CantonLedger(settings, Decimal("1000"))
    if dar := os.environ.get("P2E_CANTON_DAR"):
        await ledger.upload_dar(Path(dar).read_bytes())
    yield ledger
    await ledger.close()


async def test_wallets_transfers_duplicates_and_history(canton: CantonLedger) -> None:
    run = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{run}", f"bob-{run}"
    wallet, created = await canton.open_wallet(alice, Decimal("100"))
    assert created and wallet.balance == Decimal("100.00")
    assert (await canton.open_wallet(alice, Decimal("5")))[1] is False
    await canton.open_wallet(bob, Decimal("20"))

    receipt = await canton.transfer(f"t1-{run}", alice, bob, Decimal("12.5"), reason="live")
    assert (receipt.payer_balance, receipt.payee_balance) == (Decimal("87.50"), Decimal("32.50"))
    # The same id again: deduplicated by the participant, answered with the original.
    again = await canton.transfer(f"t1-{run}", alice, bob, Decimal("12.5"), reason="live")
    assert again == receipt
    with pytest.raises(DuplicateTransfer):
        await canton.transfer(f"t1-{run}", alice, bob, Decimal("13"), reason="live")
    with pytest.raises(InsufficientFunds):
        await canton.transfer(f"t2-{run}", bob, alice, Decimal("500"))
    with pytest.raises(UnknownWallet):
        await canton.transfer(f"t3-{run}", alice, f"nobody-{run}", Decimal("1"))

    assert await canton.balance(alice) == Decimal("87.50")
    assert await canton.balance(bob) == Decimal("32.50")
    assert [r.transfer_id for r in await canton.history(alice)] == [f"t1-{run}"]
    assert await canton.get_transfer(f"t1-{run}") == receipt
    assert (await canton.verify()).ok
