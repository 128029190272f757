"""Money, receipts and reports: what the ledger interface takes and returns.

Money is `Decimal` with exactly 2 decimal places, never float; it crosses Temporal and JSON
as a string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.errors import DuplicateTransfer, InvalidAmount, InvalidTransfer

CENT = Decimal("0.01")
EntryKind = Literal["open", "transfer", "reward"]
TransferKind = Literal["transfer", "reward"]


def parse_amount(value: object, cap: Decimal | None = None) -> Decimal:
    """A positive amount with at most 2 decimal places and at most `cap`, or InvalidAmount."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidAmount(f"amount must be a number, not {value!r}")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidAmount(f"amount must be a number, not {value!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"amount must be a finite number, not {value}")
    if amount <= 0:
        raise InvalidAmount(f"amount must be greater than 0, not {value}")
    if cap is not None and amount > cap:
        raise InvalidAmount(f"amount {value} is over the per-transfer cap of {cap:.2f}")
    try:
        rounded = amount.quantize(CENT)
    except InvalidOperation:
        raise InvalidAmount(f"amount {value} is too large") from None
    if rounded != amount:
        raise InvalidAmount(f"amount {value} has more than 2 decimal places")
    return rounded


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
