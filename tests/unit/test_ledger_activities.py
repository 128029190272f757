"""LedgerActivities in an activity context: receipts, rewards from the treasury, business
errors as non-retryable ApplicationErrors and LedgerUnavailable as a retryable one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from p2engine.activities.ledger import LedgerActivities
from p2engine.ledger.base import Ledger
from p2engine.ledger.embedded import EmbeddedLedger
from p2engine.ledger.errors import LedgerUnavailable
from p2engine.ledger.models import (
    EntryKind,
    JournalEntry,
    LedgerMetrics,
    LedgerSnapshot,
    Receipt,
    TransferKind,
    TransferRequest,
    VerifyReport,
    Wallet,
)

D = Decimal
TREASURY = "treasurer"


@pytest.fixture()
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    ledger = EmbeddedLedger(tmp_path / "ledger.db", max_transfer=D("1000"))
    await ledger.open_wallet(TREASURY, D("500"))
    await ledger.open_wallet("alice", D("100"))
    await ledger.open_wallet("bob", D("20"))
    yield ledger
    await ledger.close()


@pytest.fixture()
def acts(ledger: EmbeddedLedger) -> LedgerActivities:
    return LedgerActivities(ledger, TREASURY)


def request(transfer_id: str, payer: str, payee: str, amount: str, **more: str) -> TransferRequest:
    return TransferRequest(
        transfer_id=transfer_id, payer=payer, payee=payee, amount=D(amount), **more
    )


class UnreachableLedger:
    """A Ledger whose every call finds the ledger unreachable."""

    name = "unreachable"

    def __init__(self) -> None:
        self.calls = 0

    def _down(self) -> LedgerUnavailable:
        self.calls += 1
        return LedgerUnavailable("ledger at test://nowhere: connection refused")

    async def open_wallet(self, agent: str, initial: Decimal) -> tuple[Wallet, bool]:
        raise self._down()

    async def balance(self, agent: str) -> Decimal:
        raise self._down()

    async def transfer(
        self,
        transfer_id: str,
        payer: str,
        payee: str,
        amount: Decimal,
        reason: str = "",
        reference: str = "",
        kind: TransferKind = "transfer",
    ) -> Receipt:
        raise self._down()

    async def get_transfer(self, transfer_id: str) -> Receipt | None:
        raise self._down()

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        raise self._down()

    async def overview(self) -> list[Wallet]:
        raise self._down()

    async def metrics(self) -> LedgerMetrics:
        raise self._down()

    async def audit(
        self, since: datetime | None = None, kind: EntryKind | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        raise self._down()

    async def verify(self) -> VerifyReport:
        raise self._down()

    async def close(self) -> None:
        pass


async def test_transfer_returns_the_receipt(acts: LedgerActivities, ledger: EmbeddedLedger) -> None:
    env = ActivityEnvironment()
    receipt = await env.run(
        acts.transfer, request("wf/1/0", "alice", "bob", "12.5", reason="lunch", reference="wf")
    )
    assert isinstance(receipt, Receipt)
    assert (receipt.transfer_id, receipt.kind) == ("wf/1/0", "transfer")
    assert (receipt.payer, receipt.payee, receipt.amount) == ("alice", "bob", D("12.50"))
    assert (receipt.reason, receipt.reference) == ("lunch", "wf")
    assert (receipt.payer_balance, receipt.payee_balance) == (D("87.50"), D("32.50"))
    assert await ledger.get_transfer("wf/1/0") == receipt


async def test_transfer_is_always_a_transfer_even_if_the_request_says_reward(
    acts: LedgerActivities,
) -> None:
    receipt = await ActivityEnvironment().run(
        acts.transfer, request("wf/1/0", "alice", "bob", "1", kind="reward")
    )
    assert receipt.kind == "transfer"


async def test_a_reward_with_no_payer_is_paid_by_the_treasury(
    acts: LedgerActivities, ledger: EmbeddedLedger
) -> None:
    receipt = await ActivityEnvironment().run(
        acts.reward, request("wf/2/0", "", "alice", "5", reason="good eval")
    )
    assert (receipt.kind, receipt.payer, receipt.payee) == ("reward", TREASURY, "alice")
    assert receipt.reason == "good eval"
    assert await ledger.balance(TREASURY) == D("495.00")
    assert await ledger.balance("alice") == D("105.00")
    metrics = await ledger.metrics()
    assert (metrics.transfers, metrics.rewards) == (0, 1)


async def test_a_reward_with_a_payer_is_paid_by_that_payer(
    acts: LedgerActivities, ledger: EmbeddedLedger
) -> None:
    receipt = await ActivityEnvironment().run(acts.reward, request("wf/2/1", "bob", "alice", "2"))
    assert (receipt.kind, receipt.payer) == ("reward", "bob")
    assert await ledger.balance("bob") == D("18.00")
    assert await ledger.balance(TREASURY) == D("500.00")


@pytest.mark.parametrize(
    ("payer", "payee", "amount", "error"),
    [
        ("bob", "alice", "20.01", "InsufficientFunds"),
        ("alice", "nobody", "1", "UnknownWallet"),
        ("alice", "bob", "0.001", "InvalidAmount"),
        ("alice", "bob", "1000.01", "InvalidAmount"),
        ("alice", "alice", "1", "InvalidTransfer"),
    ],
)
async def test_a_business_error_is_a_non_retryable_application_error(
    acts: LedgerActivities,
    ledger: EmbeddedLedger,
    payer: str,
    payee: str,
    amount: str,
    error: str,
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(acts.transfer, request("wf/3/0", payer, payee, amount))
    assert raised.value.type == error
    assert raised.value.non_retryable is True
    assert str(raised.value)
    assert await ledger.get_transfer("wf/3/0") is None
    assert await ledger.balance("alice") == D("100.00")
    assert await ledger.balance("bob") == D("20.00")


async def test_a_duplicate_transfer_id_is_a_non_retryable_application_error(
    acts: LedgerActivities,
) -> None:
    env = ActivityEnvironment()
    await env.run(acts.transfer, request("wf/4/0", "alice", "bob", "1"))
    with pytest.raises(ApplicationError) as raised:
        await env.run(acts.transfer, request("wf/4/0", "alice", "bob", "2"))
    assert (raised.value.type, raised.value.non_retryable) == ("DuplicateTransfer", True)


async def test_balance_of_an_unknown_wallet_is_a_non_retryable_application_error(
    acts: LedgerActivities,
) -> None:
    env = ActivityEnvironment()
    assert await env.run(acts.balance, "alice") == D("100.00")
    with pytest.raises(ApplicationError) as raised:
        await env.run(acts.balance, "nobody")
    assert (raised.value.type, raised.value.non_retryable) == ("UnknownWallet", True)


async def test_an_unavailable_ledger_is_a_retryable_application_error() -> None:
    down = UnreachableLedger()
    ledger: Ledger = down
    acts = LedgerActivities(ledger, TREASURY)
    env = ActivityEnvironment()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: env.run(acts.transfer, request("wf/5/0", "alice", "bob", "1")),
        lambda: env.run(acts.reward, request("wf/5/1", "", "bob", "1")),
        lambda: env.run(acts.balance, "alice"),
        lambda: env.run(acts.snapshot),
    ]
    for call in calls:
        with pytest.raises(ApplicationError) as raised:
            await call()
        assert raised.value.type == "LedgerUnavailable"
        assert raised.value.non_retryable is False
        assert "connection refused" in str(raised.value)
    assert down.calls == len(calls)


async def test_the_same_transfer_id_run_twice_moves_money_once(
    acts: LedgerActivities, ledger: EmbeddedLedger
) -> None:
    env = ActivityEnvironment()
    first = await env.run(acts.transfer, request("wf/6/0", "alice", "bob", "30"))
    again = await env.run(acts.transfer, request("wf/6/0", "alice", "bob", "30"))
    assert again == first
    assert await ledger.balance("alice") == D("70.00")
    assert await ledger.balance("bob") == D("50.00")
    reward = await env.run(acts.reward, request("wf/6/1", "", "bob", "3"))
    assert await env.run(acts.reward, request("wf/6/1", "", "bob", "3")) == reward
    assert await ledger.balance(TREASURY) == D("497.00")
    assert (await ledger.metrics()).transfers == 1


async def test_snapshot_has_every_wallet_and_the_metrics(
    acts: LedgerActivities, ledger: EmbeddedLedger
) -> None:
    env = ActivityEnvironment()
    await env.run(acts.transfer, request("wf/7/0", "alice", "bob", "10"))
    await env.run(acts.reward, request("wf/7/1", "", "bob", "2.5"))
    snapshot = await env.run(acts.snapshot)
    assert isinstance(snapshot, LedgerSnapshot)
    assert {w.agent: w.balance for w in snapshot.wallets} == {
        TREASURY: D("497.50"),
        "alice": D("90.00"),
        "bob": D("32.50"),
    }
    metrics = snapshot.metrics
    assert (metrics.wallets, metrics.supply, metrics.volume) == (3, D("620.00"), D("12.50"))
    assert (metrics.transfers, metrics.rewards) == (1, 1)
    assert LedgerSnapshot.model_validate_json(snapshot.model_dump_json()) == snapshot
