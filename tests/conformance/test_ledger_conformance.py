"""One behaviour suite for every ledger backend (see conftest.py for the `ledger` fixture).

Every test names its wallets and transfer ids with `uid`, so a shared live participant,
which keeps every contract, does not mix runs; ledger-wide figures (metrics, audit) are
compared as before/after deltas or filtered to the test's own wallets.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from p2engine.ledger.base import Ledger
from p2engine.ledger.errors import (
    BusinessError,
    DuplicateTransfer,
    InsufficientFunds,
    InvalidAmount,
    InvalidTransfer,
    LedgerUnavailable,
    UnknownWallet,
)
from p2engine.ledger.models import LedgerMetrics, Receipt
from tests.conformance.conftest import CAP

D = Decimal


async def open_wallets(ledger: Ledger, uid: str, **balances: str) -> dict[str, str]:
    """Open `<short name>-<uid>` with each balance; returns short name -> wallet name."""
    names = {}
    for short, initial in balances.items():
        name = f"{short}-{uid}"
        _, created = await ledger.open_wallet(name, D(initial))
        assert created
        names[short] = name
    return names


async def balances(ledger: Ledger, names: dict[str, str]) -> dict[str, Decimal]:
    return {short: await ledger.balance(name) for short, name in names.items()}


def delta(after: LedgerMetrics, before: LedgerMetrics) -> tuple[int, Decimal, Decimal, int, int]:
    return (
        after.wallets - before.wallets,
        after.supply - before.supply,
        after.volume - before.volume,
        after.transfers - before.transfers,
        after.rewards - before.rewards,
    )


# --- wallets ------------------------------------------------------------------------------


async def test_open_wallet_creates_once_and_a_second_open_changes_nothing(
    ledger: Ledger, uid: str
) -> None:
    alice, bob = f"alice-{uid}", f"bob-{uid}"
    wallet, created = await ledger.open_wallet(alice, D("100"))
    assert created is True
    assert (wallet.agent, wallet.balance) == (alice, D("100.00"))
    again, created = await ledger.open_wallet(alice, D("5"))
    assert created is False
    assert (again.agent, again.balance) == (alice, D("100.00"))
    assert await ledger.balance(alice) == D("100.00")
    # Also once money has moved: reopening neither resets nor tops up the balance.
    await ledger.open_wallet(bob, D("0"))
    await ledger.transfer(f"t1-{uid}", alice, bob, D("10"))
    again, created = await ledger.open_wallet(alice, D("500"))
    assert (again.balance, created) == (D("90.00"), False)
    assert await ledger.balance(alice) == D("90.00")


async def test_balance_and_history_of_an_unknown_wallet_are_unknown_wallet(
    ledger: Ledger, uid: str
) -> None:
    with pytest.raises(UnknownWallet):
        await ledger.balance(f"nobody-{uid}")
    with pytest.raises(UnknownWallet):
        await ledger.history(f"nobody-{uid}")


# --- transfers ----------------------------------------------------------------------------


async def test_transfer_moves_the_amount_and_returns_a_receipt(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20")
    receipt = await ledger.transfer(
        f"t1-{uid}", w["alice"], w["bob"], D("12.5"), reason="lunch", reference="conv-1"
    )
    assert isinstance(receipt, Receipt)
    assert receipt.transfer_id == f"t1-{uid}"
    assert receipt.kind == "transfer"
    assert (receipt.payer, receipt.payee) == (w["alice"], w["bob"])
    assert receipt.amount == D("12.50")
    assert (receipt.reason, receipt.reference) == ("lunch", "conv-1")
    assert (receipt.payer_balance, receipt.payee_balance) == (D("87.50"), D("32.50"))
    assert await balances(ledger, w) == {"alice": D("87.50"), "bob": D("32.50")}
    assert await ledger.get_transfer(f"t1-{uid}") == receipt
    assert await ledger.get_transfer(f"never-{uid}") is None


async def test_the_same_transfer_id_with_the_same_details_returns_the_same_receipt(
    ledger: Ledger, uid: str
) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20")
    first = await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("30"), reason="x")
    again = await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("30.00"), reason="x")
    assert again == first
    assert await balances(ledger, w) == {"alice": D("70.00"), "bob": D("50.00")}
    assert [r.transfer_id for r in await ledger.history(w["alice"])] == [f"t1-{uid}"]


@pytest.mark.parametrize("change", ["amount", "payee", "reason", "payer"])
async def test_the_same_transfer_id_with_other_details_is_a_duplicate(
    ledger: Ledger, uid: str, change: str
) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20", carol="50")
    tid = f"t1-{uid}"
    first = await ledger.transfer(tid, w["alice"], w["bob"], D("10"), reason="a")
    payer, payee, amount, reason = w["alice"], w["bob"], D("10"), "a"
    if change == "amount":
        amount = D("11")
    elif change == "payee":
        payee = w["carol"]
    elif change == "reason":
        reason = "b"
    else:
        payer = w["carol"]
    with pytest.raises(DuplicateTransfer):
        await ledger.transfer(tid, payer, payee, amount, reason=reason)
    assert await balances(ledger, w) == {"alice": D("90"), "bob": D("30"), "carol": D("50")}
    assert await ledger.get_transfer(tid) == first
    assert await ledger.history(w["carol"]) == []


@pytest.mark.parametrize(
    "amount",
    [D("0"), D("-5"), D("NaN"), D("1E+309"), D("0.001"), CAP + D("0.01")],
    ids=["zero", "negative", "nan", "1e309", "three-places", "over-cap"],
)
async def test_invalid_amounts_are_refused_and_write_nothing(
    ledger: Ledger, uid: str, amount: Decimal
) -> None:
    w = await open_wallets(ledger, uid, alice="2000", bob="20")
    before = await ledger.metrics()
    with pytest.raises(InvalidAmount):
        await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], amount)
    assert await balances(ledger, w) == {"alice": D("2000.00"), "bob": D("20.00")}
    assert await ledger.metrics() == before
    assert await ledger.get_transfer(f"t1-{uid}") is None
    assert await ledger.history(w["alice"]) == []
    # The cap itself is allowed.
    await ledger.transfer(f"t2-{uid}", w["alice"], w["bob"], CAP)
    assert await ledger.balance(w["bob"]) == CAP + D("20")


async def test_a_wallet_cannot_pay_itself(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100")
    with pytest.raises(InvalidTransfer):
        await ledger.transfer(f"t1-{uid}", w["alice"], w["alice"], D("1"))
    assert await ledger.balance(w["alice"]) == D("100.00")
    assert await ledger.get_transfer(f"t1-{uid}") is None


async def test_an_unknown_payer_or_payee_is_unknown_wallet(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100")
    with pytest.raises(UnknownWallet):
        await ledger.transfer(f"t1-{uid}", w["alice"], f"nobody-{uid}", D("1"))
    with pytest.raises(UnknownWallet):
        await ledger.transfer(f"t2-{uid}", f"nobody-{uid}", w["alice"], D("1"))
    assert await ledger.balance(w["alice"]) == D("100.00")
    assert await ledger.get_transfer(f"t1-{uid}") is None
    assert await ledger.get_transfer(f"t2-{uid}") is None


async def test_an_overdraft_is_insufficient_funds(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20")
    with pytest.raises(InsufficientFunds):
        await ledger.transfer(f"t1-{uid}", w["bob"], w["alice"], D("20.01"))
    assert await balances(ledger, w) == {"alice": D("100.00"), "bob": D("20.00")}
    assert await ledger.get_transfer(f"t1-{uid}") is None
    # Exactly the balance is fine and leaves zero.
    receipt = await ledger.transfer(f"t2-{uid}", w["bob"], w["alice"], D("20"))
    assert receipt.payer_balance == D("0.00")
    assert await ledger.balance(w["bob"]) == D("0.00")


# --- reads --------------------------------------------------------------------------------


async def test_history_is_newest_first_and_limited(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20")
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("1"))
    await ledger.transfer(f"t2-{uid}", w["bob"], w["alice"], D("2"))
    await ledger.transfer(f"t3-{uid}", w["alice"], w["bob"], D("3"))
    ids = [r.transfer_id for r in await ledger.history(w["alice"])]
    assert ids == [f"t3-{uid}", f"t2-{uid}", f"t1-{uid}"]
    ids = [r.transfer_id for r in await ledger.history(w["alice"], limit=2)]
    assert ids == [f"t3-{uid}", f"t2-{uid}"]


async def test_history_includes_received_transfers(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20", carol="0")
    receipt = await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("4"), reason="gift")
    assert await ledger.history(w["bob"]) == [receipt]
    assert await ledger.history(w["carol"]) == []


async def test_overview_lists_every_wallet_with_its_balance(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20", carol="0")
    await ledger.transfer(f"t1-{uid}", w["alice"], w["carol"], D("7.25"))
    ours = set(w.values())
    listed = {x.agent: x.balance for x in await ledger.overview() if x.agent in ours}
    assert listed == {w["alice"]: D("92.75"), w["bob"]: D("20.00"), w["carol"]: D("7.25")}


async def test_metrics_count_transfers_and_rewards_and_transfers_conserve_supply(
    ledger: Ledger, uid: str
) -> None:
    empty = await ledger.metrics()
    w = await open_wallets(ledger, uid, alice="100", bob="20", carol="0.50")
    opened = await ledger.metrics()
    assert delta(opened, empty) == (3, D("120.50"), D("0"), 0, 0)
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("10"))
    await ledger.transfer(f"t2-{uid}", w["bob"], w["carol"], D("5.5"))
    await ledger.transfer(f"r1-{uid}", w["alice"], w["carol"], D("1.25"), kind="reward")
    # A repeat and a refusal count for nothing.
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("10"))
    with pytest.raises(InsufficientFunds):
        await ledger.transfer(f"t3-{uid}", w["carol"], w["bob"], D("100"))
    after = await ledger.metrics()
    assert delta(after, opened) == (0, D("0"), D("16.75"), 2, 1)
    assert await ledger.get_transfer(f"r1-{uid}") is not None
    reward = await ledger.get_transfer(f"r1-{uid}")
    assert reward is not None and reward.kind == "reward"


async def test_audit_is_oldest_first_with_openings_and_transfers_filtered_by_kind_and_since(
    ledger: Ledger, uid: str
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    w = await open_wallets(ledger, uid, alice="100", bob="20")
    ours = set(w.values())
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("10"), reason="one")
    await ledger.transfer(f"t2-{uid}", w["bob"], w["alice"], D("5"), reference="ref")
    await ledger.transfer(f"r1-{uid}", w["alice"], w["bob"], D("1.25"), kind="reward")

    everything = await ledger.audit(since=start, limit=10_000)
    assert [e.at for e in everything] == sorted(e.at for e in everything)
    rows = [e for e in everything if e.payee in ours]
    assert [(e.kind, e.transfer_id, e.payer, e.payee, e.amount) for e in rows] == [
        ("open", None, None, w["alice"], D("100.00")),
        ("open", None, None, w["bob"], D("20.00")),
        ("transfer", f"t1-{uid}", w["alice"], w["bob"], D("10.00")),
        ("transfer", f"t2-{uid}", w["bob"], w["alice"], D("5.00")),
        ("reward", f"r1-{uid}", w["alice"], w["bob"], D("1.25")),
    ]
    assert (rows[2].reason, rows[3].reference) == ("one", "ref")

    rewards = await ledger.audit(since=start, kind="reward", limit=10_000)
    assert {e.kind for e in rewards} == {"reward"}
    assert [e.transfer_id for e in rewards if e.payee in ours] == [f"r1-{uid}"]
    openings = await ledger.audit(since=start, kind="open", limit=10_000)
    assert {e.kind for e in openings} == {"open"}
    assert [e.payee for e in openings if e.payee in ours] == [w["alice"], w["bob"]]

    later = await ledger.audit(since=rows[3].at, limit=10_000)
    assert all(e.at >= rows[3].at for e in later)
    assert [e.transfer_id for e in later if e.payee in ours] == [f"t2-{uid}", f"r1-{uid}"]
    assert len(await ledger.audit(limit=2)) == 2


async def test_verify_is_ok_after_a_series_of_transfers(ledger: Ledger, uid: str) -> None:
    w = await open_wallets(ledger, uid, alice="100", bob="20", carol="3")
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("10"))
    await ledger.transfer(f"t2-{uid}", w["bob"], w["carol"], D("25.5"))
    await ledger.transfer(f"t3-{uid}", w["carol"], w["alice"], D("0.01"), kind="reward")
    await ledger.transfer(f"t1-{uid}", w["alice"], w["bob"], D("10"))  # a repeat
    report = await ledger.verify()
    assert report.ok, report.problem
    assert report.problem is None and report.first_bad_seq is None
    assert report.rows >= 6
    assert report.wallets >= 3


# --- concurrency --------------------------------------------------------------------------

TRANSFERS = 200
WALLETS = 5
SEED = 20240611


async def _with_retries(
    ledger: Ledger, tid: str, payer: str, payee: str, amount: Decimal
) -> Receipt | BusinessError:
    """One transfer as a Temporal activity would run it: LedgerUnavailable (contention) is
    retried with the same id, a business error is the answer."""
    for attempt in range(10):
        try:
            return await ledger.transfer(tid, payer, payee, amount)
        except BusinessError as exc:
            return exc
        except LedgerUnavailable:
            if attempt == 9:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


async def test_concurrent_opposing_transfers_keep_the_ledger_consistent(
    ledger: Ledger, uid: str
) -> None:
    names = [f"w{i}-{uid}" for i in range(WALLETS)]
    for name in names:
        await ledger.open_wallet(name, D("20"))
    supply = D("20") * WALLETS
    rng = random.Random(SEED)
    plan = []
    for i in range(TRANSFERS):
        payer, payee = rng.sample(names, 2)
        amount = D(rng.randint(1, 3000)) / 100
        if i % 40 == 39:  # more than the whole supply: refused in any order
            amount = supply + D("50")
        plan.append((f"c{i}-{uid}", payer, payee, amount))

    started = time.monotonic()
    results = await asyncio.gather(*(_with_retries(ledger, *step) for step in plan))
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"{TRANSFERS} concurrent transfers took {elapsed:.1f} s"

    receipts = [r for r in results if isinstance(r, Receipt)]
    failures = [r for r in results if not isinstance(r, Receipt)]
    assert receipts, "no transfer succeeded"
    assert len(failures) >= TRANSFERS // 40
    assert all(isinstance(f, InsufficientFunds) for f in failures), failures

    final = {name: await ledger.balance(name) for name in names}
    assert all(b >= 0 for b in final.values()), final
    assert sum(final.values()) == supply
    for receipt, (tid, payer, payee, amount) in zip(results, plan, strict=True):
        if isinstance(receipt, Receipt):
            assert (receipt.transfer_id, receipt.payer, receipt.payee) == (tid, payer, payee)
            assert receipt.amount == amount
            assert receipt.payer_balance is not None and receipt.payer_balance >= 0
            assert await ledger.get_transfer(tid) == receipt
        else:
            assert await ledger.get_transfer(tid) is None
    # Replaying the successful receipts in ledger order from 20.00 each gives the balances.
    replayed = dict.fromkeys(names, D("20"))
    for receipt in sorted(receipts, key=lambda r: r.seq):
        replayed[receipt.payer] -= receipt.amount
        replayed[receipt.payee] += receipt.amount
        assert replayed[receipt.payer] >= 0
        assert (receipt.payer_balance, receipt.payee_balance) == (
            replayed[receipt.payer],
            replayed[receipt.payee],
        )
    assert replayed == final
    report = await ledger.verify()
    assert report.ok, report.problem
