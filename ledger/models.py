"""Money, receipts and reports: what the ledger interface takes and returns.

Money is `Decimal` with exactly 2 decimal places, never float; it crosses Temporal and JSON
as a string.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from p2engine.ledger.errors import DuplicateTransfer, InvalidAmount, InvalidTransfer

CENT = Decimal("0.01")
# The most a wallet starts with: 10^14 cents, so balances stay far inside SQLite's 64-bit
# integers (9.2 * 10^18).
MAX_BALANCE = Decimal(10**12)
EntryKind = Literal["open", "transfer", "reward"]
TransferKind = Literal["transfer", "reward"]

# Amount text: ASCII digits, at most one '.', an optional sign; no exponent, no '_'. Decimal()
# alone also reads other digit systems (Arabic-Indic, fullwidth), '1_0' and '1e3', which would
# move an amount other than the one a reader sees.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_ASCII_SPACE = " \t\n\r\v\f"
_PLAIN_RULE = "written with digits 0-9 and at most one '.'"


def _plain(text: str) -> str | None:
    """`text` without surrounding ASCII whitespace if it is a plain decimal, else None."""
    stripped = text.strip(_ASCII_SPACE)
    return stripped if _PLAIN_DECIMAL.fullmatch(stripped) else None


def _number(value: object, what: str) -> Decimal:
    """`value` as a Decimal: a Decimal, int or float as it is, text only as a plain decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        text = _plain(value)
        if text is None:
            raise InvalidAmount(f"{what} must be {_PLAIN_RULE}, not {value!r}")
        return Decimal(text)
    if isinstance(value, float):
        return Decimal(str(value))  # the float as it prints, not its binary expansion
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise InvalidAmount(f"{what} must be a number, not {value!r}")


def _two_places(amount: Decimal, value: object, what: str) -> Decimal:
    try:
        rounded = amount.quantize(CENT)
    except InvalidOperation:
        raise InvalidAmount(f"{what} {value} is too large") from None
    if rounded != amount:
        raise InvalidAmount(f"{what} {value} has more than 2 decimal places")
    return rounded


def parse_amount(value: object, cap: Decimal | None = None) -> Decimal:
    """A positive amount with at most 2 decimal places and at most `cap`, or InvalidAmount."""
    amount = _number(value, "amount")
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be a finite number, not {value}")
    if amount <= 0:
        raise InvalidAmount(f"amount must be greater than 0, not {value}")
    if cap is not None and amount > cap:
        raise InvalidAmount(f"amount {value} is over the per-transfer cap of {cap:.2f}")
    return _two_places(amount, value, "amount")


def parse_balance(value: object) -> Decimal:
    """A wallet's starting balance, from 0 to MAX_BALANCE with at most 2 decimal places, or
    InvalidAmount."""
    balance = _number(value, "initial balance")
    if not balance.is_finite() or not 0 <= balance <= MAX_BALANCE:
        raise InvalidAmount(f"initial balance must be from 0 to {MAX_BALANCE:,}, not {value}")
    return abs(_two_places(balance, value, "initial balance"))  # abs: -0 is 0


def _plain_text(value: object) -> object:
    """Plain amount text (stripped) and any non-text value pass on; other text is refused."""
    if not isinstance(value, str):
        return value
    text = _plain(value)
    if text is None:
        raise ValueError(f"an amount must be {_PLAIN_RULE}")
    return text


# An amount a model sends: pydantic's own Decimal parsing reads Arabic-Indic ten and '1_0' as
# 10 too.
PlainAmount = Annotated[Decimal, BeforeValidator(_plain_text)]


def checked_transfer(
    transfer_id: str, payer: str, payee: str, amount: object, cap: Decimal | None
) -> Decimal:
    """The checks every backend makes before it touches storage; returns the amount."""
    value = parse_amount(amount, cap)
    if not transfer_id:
        raise InvalidTransfer("a transfer needs a transfer id")
    if payer == payee:
        raise InvalidTransfer(f"{payer} cannot pay itself")
    return value


def money(value: Decimal) -> str:
    return f"{value:.2f}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Wallet(_Frozen):
    agent: str
    balance: Decimal
    opened_at: datetime


class Receipt(_Frozen):
    """A transfer as the ledger recorded it; a repeated command returns the same receipt."""

    transfer_id: str
    kind: TransferKind
    payer: str
    payee: str
    amount: Decimal
    reason: str = ""
    reference: str = ""
    at: datetime
    seq: int = Field(description="position in the ledger's journal (or offset on Canton)")
    payer_balance: Decimal | None = Field(default=None, description="right after the transfer")
    payee_balance: Decimal | None = None

    def same_command(self, payer: str, payee: str, amount: Decimal, reason: str) -> bool:
        return (self.payer, self.payee, self.amount, self.reason) == (payer, payee, amount, reason)

    def answer_repeat(self, payer: str, payee: str, amount: Decimal, reason: str) -> Receipt:
        """This receipt's transfer id came again: the same command gets this receipt back,
        another one is a DuplicateTransfer."""
        if self.same_command(payer, payee, amount, reason):
            return self
        raise DuplicateTransfer(
            f"transfer id {self.transfer_id} was already used for {self.amount:.2f} "
            f"from {self.payer} to {self.payee}"
        )


class JournalEntry(_Frozen):
    """One row of the append-only journal: wallet openings and transfers."""

    seq: int
    at: datetime
    kind: EntryKind
    transfer_id: str | None
    payer: str | None
    payee: str
    amount: Decimal
    reason: str = ""
    reference: str = ""
    hash: str = ""


class LedgerMetrics(_Frozen):
    wallets: int
    supply: Decimal
    volume: Decimal = Field(description="sum of transfer and reward amounts")
    transfers: int
    rewards: int


class VerifyReport(_Frozen):
    ok: bool
    rows: int
    wallets: int
    problem: str | None = None
    first_bad_seq: int | None = None


class TransferRequest(BaseModel):
    """A transfer asked of the ledger activities; `transfer_id` comes from the workflow."""

    transfer_id: str = Field(min_length=1)
    payer: str
    payee: str
    amount: Decimal
    reason: str = ""
    reference: str = ""
    kind: TransferKind = "transfer"


class LedgerSnapshot(BaseModel):
    wallets: list[Wallet]
    metrics: LedgerMetrics
