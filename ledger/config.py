"""Ledger settings (the `ledger:` section of config/p2e.yaml)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CantonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="JSON Ledger API v2 base URL")
    user_id: str = "p2engine"
    party_hint: str = "p2engine_operator"
    package_name: str = "p2engine-ledger"
    token: str | None = Field(default=None, description="a ready bearer token")
    hmac_secret: str | None = Field(default=None, description="dev: sign HS256 user tokens")
    timeout_s: float = 10.0


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["embedded", "canton"] = "embedded"
    max_transfer: Decimal = Field(default=Decimal("1000"), gt=0, description="per transfer")
    initial_balance: Decimal = Field(default=Decimal("100"), ge=0, description="ledger init")
    treasury: str = Field(default="treasurer", description="the wallet rewards are paid from")
    canton: CantonSettings = CantonSettings()
