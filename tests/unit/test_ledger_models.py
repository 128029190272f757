"""Ledger values: amounts (parse_amount, parse_balance, the tools' amount arguments), money
formatting, receipts and the request/report models."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from p2engine.agents.tools.ledger import RewardArgs, TransferArgs
from p2engine.ledger.errors import (
    BusinessError,
    DuplicateTransfer,
    InsufficientFunds,
    InvalidAmount,
    InvalidTransfer,
    LedgerError,
    LedgerStorageError,
    LedgerUnavailable,
    Unauthorized,
    UnknownWallet,
)
from p2engine.ledger.models import (
    MAX_BALANCE,
    LedgerMetrics,
    LedgerSnapshot,
    Receipt,
    TransferRequest,
    Wallet,
    money,
    parse_amount,
    parse_balance,
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
        (D("1E+2"), "100.00"),
        (D("3.5"), "3.50"),
        (" 7.25 ", "7.25"),
        ("\t7.25\r\n", "7.25"),
        ("+5", "5.00"),
        (".5", "0.50"),
        ("5.", "5.00"),
        ("007", "7.00"),
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
        ("-0", "greater than 0"),
        (float("inf"), "finite"),
        (float("nan"), "finite"),
        (D("Infinity"), "finite"),
        (D("NaN"), "finite"),
        (D("1E+309"), "cap"),
        ("0.001", "more than 2 decimal places"),
        (D("1.005"), "more than 2 decimal places"),
        ("1000.01", "cap"),
        (1001, "cap"),
        (True, "must be a number"),
        (False, "must be a number"),
        (None, "must be a number"),
        ([], "must be a number"),
        ({"amount": 1}, "must be a number"),
    ],
)
def test_parse_amount_refuses_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidAmount, match=reason):
        parse_amount(value, CAP)


# Text Decimal() reads but a person may not read as that amount (or at all): other digit
# systems, underscores, exponents, words, and whitespace that is not ASCII.
NOT_PLAIN = [
    "1_0",
    "1_000.00",
    "\u0661\u0660",  # Arabic-Indic 10
    "\u06f5",  # Extended Arabic-Indic 5
    "\u0967\u0966",  # Devanagari 10
    "\uff15",  # fullwidth 5
    "\uff11\uff10.\uff15\uff10",  # fullwidth 10.50
    "1\u0660",  # ASCII 1, Arabic-Indic 0
    "1e3",
    "1E2",
    "1e309",
    "1e400",
    "5e-1",
    "nan",
    "NaN",
    "sNaN",
    "inf",
    "-inf",
    "Infinity",
    "abc",
    "",
    " ",
    "1,5",
    "1.2.3",
    ".",
    "+",
    "--5",
    "+-5",
    "1 0",
    "0x10",
    "\u00a05",  # no-break space before 5
    "5\u2003",  # em space after 5
    "\u22125",  # minus sign, not hyphen-minus
]


def _refused_everywhere(text: str) -> None:
    """Refused by parse_amount and parse_balance, and by the tools' argument models, since
    pydantic's own Decimal reads Arabic-Indic ten or '1_0' as 10 before the ledger sees it."""
    with pytest.raises(InvalidAmount, match="written with digits 0-9 and at most one"):
        parse_amount(text, CAP)
    with pytest.raises(InvalidAmount, match="written with digits 0-9"):
        parse_balance(text)
    for model, payee in ((TransferArgs, "to_agent"), (RewardArgs, "agent_id")):
        with pytest.raises(ValidationError, match="written with digits 0-9"):
            model.model_validate({payee: "bob", "amount": text})


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_amount_text_must_be_ascii_digits_with_at_most_one_dot(text: str) -> None:
    _refused_everywhere(text)


def test_a_refused_amount_text_is_named_as_typed() -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_amount("1_0", CAP)
    assert (
        str(refused.value)
        == "amount must be written with digits 0-9 and at most one '.', not '1_0'"
    )


def test_tool_amounts_take_plain_text_and_json_numbers() -> None:
    assert TransferArgs.model_validate({"to_agent": "b", "amount": " 12.50 "}).amount == D("12.5")
    assert RewardArgs.model_validate_json('{"agent_id": "b", "amount": 3}').amount == 3
    assert TransferArgs.model_validate_json('{"to_agent": "b", "amount": 0.5}').amount == D("0.5")


def test_parse_amount_without_a_cap_refuses_what_cannot_be_held_in_cents() -> None:
    assert parse_amount("123456789.99") == D("123456789.99")
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount("1" + "0" * 400)
    with pytest.raises(InvalidAmount, match="too large"):
        parse_amount(D("1E+30"))


ASCII_SPACE = " \t\n\r\v\f"
# Zeros of other digit systems whose nine next code points are 1-9: Arabic-Indic, Extended
# Arabic-Indic, Devanagari, Bengali, Thai, fullwidth, mathematical bold.
OTHER_ZEROS = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0xFF10, 0x1D7CE]


@st.composite
def plain_amounts(draw: st.DrawFn) -> tuple[str, Decimal]:
    """Plain decimal text of an amount within the cap, and that amount: any number of places
    up to 2 (or a bare dot), leading zeros, '.50' for 0.50, a '+', ASCII whitespace around."""
    cents = draw(st.integers(min_value=1, max_value=int(CAP * 100)))
    amount = D(cents).scaleb(-2)
    needed = 0 if cents % 100 == 0 else 1 if cents % 10 == 0 else 2
    digits = f"{amount:.{draw(st.integers(needed, 2))}f}"
    if "." not in digits and draw(st.booleans()):
        digits += "."
    if digits.startswith("0.") and draw(st.booleans()):
        digits = digits[1:]
    digits = "0" * draw(st.integers(0, 3)) + digits
    space = st.text(alphabet=ASCII_SPACE, max_size=2)
    sign = draw(st.sampled_from(["", "+"]))
    return draw(space) + sign + digits + draw(space), amount


@given(plain_amounts())
def test_plain_amount_text_within_the_cap_round_trips(case: tuple[str, Decimal]) -> None:
    text, amount = case
    parsed = parse_amount(text, CAP)
    assert parsed == amount and parsed.as_tuple().exponent == -2
    assert parse_amount(money(parsed), CAP) == parsed
    assert TransferArgs.model_validate({"to_agent": "bob", "amount": text}).amount == amount
    with pytest.raises(InvalidAmount, match="greater than 0"):
        parse_amount("-" + text.strip(ASCII_SPACE).removeprefix("+"), CAP)


@given(
    plain_amounts(),
    st.data(),
    st.sampled_from(["_", "e", "E", "e2", "E-1", "e+0"]) | st.characters(min_codepoint=128),
)
def test_a_non_ascii_character_an_underscore_or_an_exponent_anywhere_is_refused(
    case: tuple[str, Decimal], data: st.DataObject, inserted: str
) -> None:
    text = case[0]
    at = data.draw(st.integers(0, len(text)))
    _refused_everywhere(text[:at] + inserted + text[at:])


@given(plain_amounts(), st.sampled_from(OTHER_ZEROS))
def test_the_same_amount_in_another_digit_system_is_refused(
    case: tuple[str, Decimal], zero: int
) -> None:
    text, amount = case
    other = "".join(chr(zero + int(c)) if c in string.digits else c for c in text)
    assert D(other.strip(ASCII_SPACE)) == amount  # what Decimal() alone would have paid
    _refused_everywhere(other)


@given(st.text().filter(lambda text: not text.isascii()))
def test_any_text_with_a_non_ascii_character_is_refused(text: str) -> None:
    _refused_everywhere(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "0.00"), ("-0", "0.00"), (0, "0.00"), ("100", "100.00"), (D("12345678901.23"),
     "12345678901.23"), (str(MAX_BALANCE), f"{MAX_BALANCE:.2f}")],
)  # fmt: skip
def test_parse_balance_takes_zero_up_to_the_largest_balance(value: object, expected: str) -> None:
    assert str(parse_balance(value)) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-1", "from 0 to 1,000,000,000,000"),
        ("1" + "0" * 400, "from 0 to"),
        (D("1E+400"), "from 0 to"),
        (MAX_BALANCE + D("0.01"), "from 0 to"),
        (D("NaN"), "from 0 to"),
        (float("inf"), "from 0 to"),
        ("1.001", "more than 2 decimal places"),
        ("1e400", "written with digits 0-9"),
        (None, "must be a number"),
    ],
)
def test_parse_balance_refuses_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidAmount, match=reason):
        parse_balance(value)


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
    # A missing or damaged file is the same file on every retry.
    assert issubclass(LedgerStorageError, LedgerError)
    assert LedgerStorageError.retryable is False


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
