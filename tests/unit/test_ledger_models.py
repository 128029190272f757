"""Ledger values: parse_amount, money formatting, receipts and the request/report models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from ledger.errors import (
    BusinessError,
    DuplicateTransfer,
    InsufficientFunds,
    InvalidAmount,
    InvalidTransfer,
    LedgerError,
    LedgerUnavailable,
    Unauthorized,
    UnknownWallet,
)
from ledger.models import (
    LedgerMetrics,
    LedgerSnapshot,
    Receipt,
    TransferRequest,
    Wallet,
    money,
    parse_amount,
)

D = Decimal
CAP = D("1000")
AT = datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)


# --- parse_amount -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("25", "25.00"),
        (25, "25.00"),
        ("0.10", "0.10"),
        (0.1, "0.10"),
        ("1e2", "100.00"),
        (D("3.5"), "3.50"),
        (" 7.25 ", "7.25"),
        ("0.01", "0.01"),
        ("1000", "1000.00"),
        (D("1000.00"), "1000.00"),
        ("12.50", "12.50"),
    ],
)
def test_parse_amount_accepts_positive_amounts_with_two_places(
    value: object, expected: str
) -> None:
    amount = parse_amount(value, CAP)
    assert isinstance(amount, Decimal)
    assert str(amount) == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "greater than 0"),
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("-5", "greater than 0"),
        (-0.01, "greater than 0"),
        ("nan", "finite"),
        ("NaN", "finite"),
        ("inf", "finite"),
        ("-inf", "finite"),
        (float("inf"), "finite"),
        (float("nan"), "finite"),
        (D("Infinity"), "finite"),
        ("1e309", "cap"),
        (D("1E+309"), "cap"),
        ("0.001", "more than 2 decimal places"),
        (D("1.005"), "more than 2 decimal places"),
        ("1000.01", "cap"),
        (1001, "cap"),
        (True, "must be a number"),
        (False, "must be a number"),
        ("abc", "must be a number"),
        ("", "must be a number"),
        ("1,5", "must be a number"),
        (None, "must be a number"),
        ([], "must be a number"),
        ({"amount": 1}, "must be a number"),
    ],
)
def test_parse_amount_refuses_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidAmount, match=reason):
        parse_amount(value, CAP)


def test_parse_amount_without_a_cap_refuses_what_cannot_be_held_in_cents() -> None:
    assert parse_amount("123456789.99") == D("123456789.99")
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount("1e309")
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount(D("1E+30"))


def test_the_cap_is_inclusive() -> None:
    assert parse_amount("1000.00", CAP) == CAP
    assert parse_amount("5", D("5")) == D("5.00")
    with pytest.raises(InvalidAmount, match=r"cap of 5\.00"):
        parse_amount("5.01", D("5"))


def test_invalid_amount_is_a_non_retryable_business_error() -> None:
    for error in (
        InvalidAmount,
        InvalidTransfer,
        InsufficientFunds,
        UnknownWallet,
        Unauthorized,
        DuplicateTransfer,
    ):
        assert issubclass(error, BusinessError)
        assert error.retryable is False
    assert issubclass(LedgerUnavailable, LedgerError)
    assert not issubclass(LedgerUnavailable, BusinessError)
    assert LedgerUnavailable.retryable is True


# --- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (D("1.5"), "1.50"),
        (D("1000"), "1000.00"),
        (D("0"), "0.00"),
        (D("0.10"), "0.10"),
        (D("12345678.9"), "12345678.90"),
        (D("-3.1"), "-3.10"),
        (D("1E+2"), "100.00"),
    ],
)
def test_money_shows_two_places(value: Decimal, shown: str) -> None:
    assert money(value) == shown


# --- receipts -----------------------------------------------------------------------------


def _receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "transfer_id": "t-1",
        "kind": "transfer",
        "payer": "alice",
        "payee": "bob",
        "amount": D("12.50"),
        "reason": "lunch",
        "reference": "conv-1",
        "at": AT,
        "seq": 4,
        "payer_balance": D("87.50"),
        "payee_balance": D("32.50"),
    }
    fields.update(changes)
    return Receipt.model_validate(fields)


def test_same_command_compares_payer_payee_amount_and_reason() -> None:
    receipt = _receipt()
    assert receipt.same_command("alice", "bob", D("12.50"), "lunch")
    assert receipt.same_command("alice", "bob", D("12.5"), "lunch")  # equal as numbers
    assert not receipt.same_command("carol", "bob", D("12.50"), "lunch")
    assert not receipt.same_command("alice", "carol", D("12.50"), "lunch")
    assert not receipt.same_command("alice", "bob", D("12.51"), "lunch")
    assert not receipt.same_command("alice", "bob", D("12.50"), "dinner")
    assert not receipt.same_command("alice", "bob", D("12.50"), "")


def test_receipts_are_frozen_and_survive_a_json_round_trip() -> None:
    receipt = _receipt()
    with pytest.raises(ValidationError):
        receipt.amount = D("1")  # type: ignore[misc]
    again = Receipt.model_validate_json(receipt.model_dump_json())
    assert again == receipt
    assert '"amount":"12.50"' in receipt.model_dump_json()
    assert _receipt(payer_balance=None, payee_balance=None).payer_balance is None
    with pytest.raises(ValidationError):
        _receipt(kind="refund")


def test_transfer_request_needs_a_transfer_id_and_defaults_to_a_transfer() -> None:
    request = TransferRequest(transfer_id="wf/1/0", payer="a", payee="b", amount=D("1"))
    assert (request.kind, request.reason, request.reference) == ("transfer", "", "")
    assert TransferRequest.model_validate_json(request.model_dump_json()) == request
    with pytest.raises(ValidationError):
        TransferRequest(transfer_id="", payer="a", payee="b", amount=D("1"))


def test_a_snapshot_round_trips_with_exact_money() -> None:
    snapshot = LedgerSnapshot(
        wallets=[Wallet(agent="alice", balance=D("0.30"), opened_at=AT)],
        metrics=LedgerMetrics(wallets=1, supply=D("0.30"), volume=D("0"), transfers=0, rewards=0),
    )
    again = LedgerSnapshot.model_validate_json(snapshot.model_dump_json())
    assert again == snapshot
    assert str(again.wallets[0].balance) == "0.30"
