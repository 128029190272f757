"""CantonLedger against MockParticipant (tests/canton_mock.py): the JSON Ledger API v2 request
shapes it sends, deduplication and retries, error mapping, tokens and money encoding.

The mock is written from the documented shapes, not recorded from a participant; the live
test is tests/integration/test_canton_live.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from p2engine.ledger.canton import CantonLedger
from p2engine.ledger.canton_api import command_id, decode_time, hs256_token
from p2engine.ledger.config import CantonSettings
from p2engine.ledger.errors import (
    DuplicateTransfer,
    InsufficientFunds,
    InvalidAmount,
    InvalidTransfer,
    LedgerError,
    LedgerUnavailable,
    Unauthorized,
    UnknownWallet,
)
from tests.canton_mock import MockParticipant, make_canton_ledger

FOR_TRANSACTION = "/v2/commands/submit-and-wait-for-transaction"
SUBMIT = "/v2/commands/submit-and-wait"
ACS = "/v2/state/active-contracts"
ACS_PAGE = "/v2/state/active-contracts-page"
WALLET_TID = "#p2engine-ledger:P2Engine.Ledger:Wallet"
RECEIPT_TID = "#p2engine-ledger:P2Engine.Ledger:TransferReceipt"


@pytest.fixture()
async def pair() -> AsyncIterator[tuple[CantonLedger, MockParticipant]]:
    """A ledger with alice (100.00) and bob (20.00)."""
    ledger, mock = make_canton_ledger()
    await ledger.open_wallet("alice", Decimal("100"))
    await ledger.open_wallet("bob", Decimal("20"))
    yield ledger, mock
    await ledger.close()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- set-up -------------------------------------------------------------------------------


async def test_first_use_allocates_the_party_and_creates_the_user() -> None:
    ledger, mock = make_canton_ledger()
    await ledger.open_wallet("alice", Decimal("100"))
    [listing] = mock.requests_to("/v2/parties")[:1]
    assert listing.method == "GET"
    [allocate] = [r for r in mock.requests_to("/v2/parties") if r.method == "POST"]
    assert allocate.body == {"partyIdHint": "p2engine_operator", "identityProviderId": ""}
    party = await ledger.party()
    assert party.startswith("p2engine_operator::1220")
    [lookup] = mock.requests_to("/v2/users/p2engine")
    assert lookup.method == "GET"
    assert ("/v2/users/p2engine", 404, "USER_NOT_FOUND") in mock.responses
    [create] = mock.requests_to("/v2/users")
    assert create.body == {
        "user": {
            "id": "p2engine",
            "primaryParty": party,
            "isDeactivated": False,
            "identityProviderId": "",
        },
        "rights": [{"kind": {"CanActAs": {"value": {"party": party}}}}],
    }
    await ledger.close()


async def test_an_existing_party_and_user_are_reused_and_missing_rights_granted() -> None:
    ledger, mock = make_canton_ledger()
    party = mock.add_party("p2engine_operator")
    mock.add_party("someone_else")
    mock.users["p2engine"] = {"id": "p2engine", "primaryParty": "", "isDeactivated": False}
    mock.rights["p2engine"] = []
    assert await ledger.party() == party
    assert not [r for r in mock.requests if r.method == "POST" and r.path == "/v2/parties"]
    assert not mock.requests_to("/v2/users")
    [grant] = [r for r in mock.requests_to("/v2/users/p2engine/rights") if r.method == "POST"]
    assert grant.body["rights"] == [{"kind": {"CanActAs": {"value": {"party": party}}}}]
    # A second client on the same participant finds everything in place.
    again = CantonLedger(ledger.settings, transport=mock.transport)
    posts = len([r for r in mock.requests if r.method == "POST"])
    assert await again.party() == party
    assert len([r for r in mock.requests if r.method == "POST"]) == posts
    await ledger.close()
    await again.close()


async def test_upload_dar_uses_v2_dars_and_falls_back_to_v2_packages_on_3_4() -> None:
    ledger, mock = make_canton_ledger(version="3.4")
    await ledger.upload_dar(b"PK\x03\x04dar")
    dars, packages = mock.requests[-2:]
    assert (dars.path, dars.params) == ("/v2/dars", {"vetAllPackages": "true"})
    assert dars.headers["content-type"] == "application/octet-stream"
    assert packages.path == "/v2/packages"
    assert mock.uploads == [("/v2/packages", b"PK\x03\x04dar")]
    newer, newer_mock = make_canton_ledger(version="3.5")
    await newer.upload_dar(b"dar")
    assert newer_mock.uploads == [("/v2/dars", b"dar")]
    await ledger.close()
    await newer.close()


# --- request shapes -----------------------------------------------------------------------


async def test_wallets_are_created_and_read_by_package_name_template_id(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    party = await ledger.party()
    create = mock.requests_to(SUBMIT)[0].body
    assert create["commandId"] == "open/alice"
    assert create["actAs"] == [party]
    assert create["userId"] == "p2engine"
    command = create["commands"][0]["CreateCommand"]
    assert command["templateId"] == WALLET_TID
    assert command["createArguments"]["balance"] == "100.00"
    assert command["createArguments"]["initial"] == "100.00"
    assert command["createArguments"]["paidTransferIds"] == {"map": []}
    # The participant names templates by package id in events; the client matches either.
    assert [w.agent for w in await ledger.overview()] == ["alice", "bob"]
    acs = mock.requests_to("/v2/state/active-contracts")[-1].body
    [(filter_party, spec)] = acs["eventFormat"]["filtersByParty"].items()
    assert filter_party == party
    [only] = spec["cumulative"]  # wallets alone: receipts never crowd them out
    template = only["identifierFilter"]["TemplateFilter"]["value"]
    assert template["templateId"] == WALLET_TID
    assert acs["activeAtOffset"] == mock.offset == 2


async def test_transfer_exercises_with_the_transfer_id_as_command_id(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    alice_cid, bob_cid = mock.wallet("alice").contract_id, mock.wallet("bob").contract_id
    receipt = await ledger.transfer("t-1", "alice", "bob", Decimal("12.5"), reason="lunch")
    [request] = mock.requests_to(FOR_TRANSACTION)
    body = request.body
    assert body["commands"]["commandId"] == "t-1"
    uuid.UUID(body["commands"]["submissionId"])
    assert body["transactionFormat"]["transactionShape"] == "TRANSACTION_SHAPE_LEDGER_EFFECTS"
    exercise = body["commands"]["commands"][0]["ExerciseCommand"]
    assert exercise["templateId"] == WALLET_TID
    assert exercise["choice"] == "Transfer"
    assert exercise["contractId"] == alice_cid
    assert exercise["choiceArgument"] == {
        "payeeCid": bob_cid,
        "transferId": "t-1",
        "amount": "12.50",
        "reason": "lunch",
        "reference": "",
        "kind": "transfer",
    }
    assert receipt.transfer_id == "t-1"
    assert (receipt.payer, receipt.payee, receipt.amount) == ("alice", "bob", Decimal("12.50"))
    assert (receipt.payer_balance, receipt.payee_balance) == (Decimal("87.50"), Decimal("32.50"))
    assert receipt.seq == mock.offset
    # Both wallets were archived and recreated: new contract ids, new balances.
    assert mock.wallet("alice").contract_id != alice_cid
    assert mock.wallet("bob").contract_id != bob_cid
    assert await ledger.balance("alice") == Decimal("87.50")
    assert await ledger.get_transfer("t-1") == receipt
    assert await ledger.get_transfer("t-2") is None


async def test_money_crosses_as_strings_and_comes_back_with_two_places(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    await ledger.transfer("t-1", "alice", "bob", Decimal("0.1"))
    raw = mock.wallet("alice").args["balance"]
    assert raw == "99.9000000000"  # Numeric 10, as the participant writes it
    balance = await ledger.balance("alice")
    assert balance == Decimal("99.90") and str(balance) == "99.90"
    for request in mock.requests:
        for value in _decimals(request.body):
            assert isinstance(value, str), value


def _decimals(body: object) -> list[object]:
    """Every value under a money key in a request body."""
    keys = {"amount", "balance", "initial"}
    if isinstance(body, dict):
        found = [v for k, v in body.items() if k in keys]
        return found + [x for v in body.values() for x in _decimals(v)]
    if isinstance(body, list):
        return [x for v in body for x in _decimals(v)]
    return []


def test_odd_transfer_ids_get_a_stable_command_id() -> None:
    assert command_id("conv-1:step 2/#a.b") == "conv-1:step 2/#a.b"
    odd = command_id("ünïcode?")
    assert odd == command_id("ünïcode?") and odd.startswith("p2e-")
    assert command_id("x" * 300) != command_id("x" * 301)


def test_timestamps_with_nanoseconds_parse() -> None:
    at = decode_time("2025-03-01T10:20:30.123456789Z")
    assert at == datetime(2025, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)
    assert decode_time("2025-03-01T12:20:30+02:00") == datetime(2025, 3, 1, 10, 20, 30, tzinfo=UTC)


# --- idempotency --------------------------------------------------------------------------


async def test_a_lost_answer_is_retried_and_gets_the_original_receipt(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    mock.lose_next_response(FOR_TRANSACTION)
    with pytest.raises(LedgerUnavailable):
        await ledger.transfer("t-1", "alice", "bob", Decimal("30"))
    # The participant committed it; the retry (same id) is deduplicated.
    receipt = await ledger.transfer("t-1", "alice", "bob", Decimal("30"))
    assert mock.responses.count((FOR_TRANSACTION, 409, "DUPLICATE_COMMAND")) == 1
    assert [r.body["commands"]["commandId"] for r in mock.requests_to(FOR_TRANSACTION)] == [
        "t-1",
        "t-1",
    ]
    submissions = {r.body["commands"]["submissionId"] for r in mock.requests_to(FOR_TRANSACTION)}
    assert len(submissions) == 2
    assert receipt.amount == Decimal("30.00") and receipt.payer_balance == Decimal("70.00")
    assert await ledger.balance("alice") == Decimal("70.00")
    assert await ledger.balance("bob") == Decimal("50.00")
    assert len(mock.active("TransferReceipt")) == 1


async def test_a_repeat_returns_the_original_receipt_even_when_funds_ran_out(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    first = await ledger.transfer("t-1", "alice", "bob", Decimal("100"))
    assert await ledger.transfer("t-1", "alice", "bob", Decimal("100")) == first
    assert await ledger.balance("alice") == Decimal("0.00")
    # Alice cannot pay 100 now, so the client never submitted the repeat.
    assert len(mock.requests_to(FOR_TRANSACTION)) == 1


async def test_a_repeat_with_other_details_is_a_duplicate(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    await ledger.transfer("t-1", "alice", "bob", Decimal("10"), reason="a")
    with pytest.raises(DuplicateTransfer, match="t-1"):
        await ledger.transfer("t-1", "alice", "bob", Decimal("11"), reason="a")
    with pytest.raises(DuplicateTransfer):
        await ledger.transfer("t-1", "alice", "bob", Decimal("10"), reason="b")
    assert (FOR_TRANSACTION, 409, "DUPLICATE_COMMAND") in mock.responses
    assert await ledger.balance("alice") == Decimal("90.00")


async def test_the_models_own_duplicate_check_is_resolved_like_deduplication(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    """Past the deduplication window only paidTransferIds refuses a repeated id."""
    ledger, mock = pair
    first = await ledger.transfer("t-1", "alice", "bob", Decimal("10"))
    mock.completions.clear()  # the window has passed
    assert await ledger.transfer("t-1", "alice", "bob", Decimal("10")) == first
    assert (FOR_TRANSACTION, 400, "DAML_INTERPRETATION_ERROR") in mock.responses
    assert await ledger.balance("alice") == Decimal("90.00")


async def test_opening_twice_leaves_the_wallet_alone(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    await ledger.transfer("t-1", "alice", "bob", Decimal("10"))
    wallet, created = await ledger.open_wallet("alice", Decimal("500"))
    assert (wallet.agent, wallet.balance, created) == ("alice", Decimal("90.00"), False)
    # A lost answer to the create: the retry reads the wallet the participant made.
    mock.lose_next_response(SUBMIT)
    with pytest.raises(LedgerUnavailable):
        await ledger.open_wallet("carol", Decimal("5"))
    wallet, created = await ledger.open_wallet("carol", Decimal("5"))
    assert (wallet.balance, created) == (Decimal("5.00"), False)
    with pytest.raises(InvalidAmount):
        await ledger.open_wallet("dave", Decimal("-1"))
    with pytest.raises(InvalidAmount):
        await ledger.open_wallet("dave", Decimal("1.001"))


# --- business errors ----------------------------------------------------------------------


async def test_common_refusals_are_found_before_any_submission(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    for amount in ("0", "-5", "1.001", "1000.01", "abc"):
        with pytest.raises(InvalidAmount):
            await ledger.transfer("t", "alice", "bob", amount)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransfer):
        await ledger.transfer("t", "alice", "alice", Decimal("1"))
    with pytest.raises(InvalidTransfer):
        await ledger.transfer("", "alice", "bob", Decimal("1"))
    with pytest.raises(UnknownWallet):
        await ledger.transfer("t", "alice", "zed", Decimal("1"))
    with pytest.raises(UnknownWallet):
        await ledger.transfer("t", "zed", "alice", Decimal("1"))
    with pytest.raises(InsufficientFunds):
        await ledger.transfer("t", "bob", "alice", Decimal("20.01"))
    with pytest.raises(UnknownWallet):
        await ledger.balance("zed")
    with pytest.raises(UnknownWallet):
        await ledger.history("zed")
    assert not mock.requests_to(FOR_TRANSACTION)


async def test_a_stale_read_is_caught_by_the_daml_assertion(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    # Between the client's read and its submission the balance drops (same contract id).
    mock.before_next(FOR_TRANSACTION, lambda m: m.set_balance("alice", Decimal("5")))
    with pytest.raises(InsufficientFunds, match="insufficient funds"):
        await ledger.transfer("t-1", "alice", "bob", Decimal("50"))
    assert mock.responses[-1] == (FOR_TRANSACTION, 400, "DAML_INTERPRETATION_ERROR")
    assert mock.active("TransferReceipt") == []
    # Nothing was deduplicated: the failed command can be resubmitted once funds allow.
    mock.set_balance("alice", Decimal("100"))
    receipt = await ledger.transfer("t-1", "alice", "bob", Decimal("50"))
    assert receipt.payer_balance == Decimal("50.00")


async def test_a_contract_spent_meanwhile_is_reread_and_resubmitted(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    mock.before_next(
        FOR_TRANSACTION, lambda m: m.apply_transfer("alice", "bob", Decimal("40"), "other-1")
    )
    receipt = await ledger.transfer("t-1", "alice", "bob", Decimal("10"))
    assert (FOR_TRANSACTION, 404, "CONTRACT_NOT_FOUND") in mock.responses
    assert receipt.payer_balance == Decimal("50.00")
    assert receipt.payee_balance == Decimal("70.00")
    assert (await ledger.verify()).ok


# --- transport and HTTP errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SERVICE_NOT_RUNNING", LedgerUnavailable),
        (500, "", LedgerUnavailable),
        (429, "PARTICIPANT_BACKPRESSURE", LedgerUnavailable),
        (409, "SUBMISSION_ALREADY_IN_FLIGHT", LedgerUnavailable),
        (409, "LOCAL_VERDICT_LOCKED_CONTRACTS", LedgerUnavailable),
        (401, "UNAUTHENTICATED", Unauthorized),
        (403, "PERMISSION_DENIED", Unauthorized),
    ],
)
async def test_http_errors_map_to_ledger_errors(
    pair: tuple[CantonLedger, MockParticipant],
    status: int,
    code: str,
    error: type[LedgerError],
) -> None:
    ledger, mock = pair
    mock.fail_next(FOR_TRANSACTION, status, code)
    with pytest.raises(error):
        await ledger.transfer("t-1", "alice", "bob", Decimal("1"))
    assert await ledger.balance("alice") == Decimal("100.00")
    assert error.retryable == (error is LedgerUnavailable)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out")]
)
async def test_transport_errors_are_unavailable(
    pair: tuple[CantonLedger, MockParticipant], exc: Exception
) -> None:
    ledger, mock = pair
    mock.raise_next("/v2/state/ledger-end", exc)
    with pytest.raises(LedgerUnavailable, match=type(exc).__name__):
        await ledger.balance("alice")


async def test_an_unreachable_participant_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    ledger = CantonLedger(
        CantonSettings(url="http://canton.test"), transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(LedgerUnavailable):
        await ledger.open_wallet("alice", Decimal("1"))
    await ledger.close()


async def test_a_list_over_the_limit_is_an_error_not_an_empty_answer() -> None:
    ledger, mock = make_canton_ledger()
    await ledger.open_wallet("alice", Decimal("1"))
    await ledger.open_wallet("bob", Decimal("1"))
    mock.list_limit = 1
    with pytest.raises(LedgerError, match="list limit") as caught:
        await ledger.overview()
    assert "http-list-max-elements-limit" in str(caught.value)
    assert not caught.value.retryable
    assert (ACS_PAGE, 404, "") in mock.responses  # 3.4: no paged endpoint
    await ledger.close()


# --- auth ---------------------------------------------------------------------------------


def test_hs256_token_verifies_with_the_secret() -> None:
    now = time.time()
    token = hs256_token("s3cret", "p2engine", now=now)
    head, payload, signature = token.split(".")
    expected = hmac.new(b"s3cret", f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64(signature), expected)
    assert json.loads(_b64(head)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(_b64(payload))
    assert claims["sub"] == "p2engine"
    assert claims["scope"] == "daml_ledger_api"
    assert now < claims["exp"] <= now + 3600
    wrong = hmac.new(b"other", f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert not hmac.compare_digest(_b64(signature), wrong)


async def test_requests_carry_a_signed_token_the_participant_accepts() -> None:
    settings = CantonSettings(url="http://canton.test", hmac_secret="s3cret")
    ledger, mock = make_canton_ledger(settings)
    await ledger.open_wallet("alice", Decimal("1"))
    headers = {r.headers.get("authorization") for r in mock.requests}
    assert len(headers) == 1
    [header] = headers
    assert header is not None and header.startswith("Bearer ")
    await ledger.close()


async def test_a_token_signed_with_the_wrong_secret_is_unauthorized() -> None:
    settings = CantonSettings(url="http://canton.test", hmac_secret="wrong")
    ledger, mock = make_canton_ledger(settings, jwt_secret="s3cret")
    with pytest.raises(Unauthorized):
        await ledger.open_wallet("alice", Decimal("1"))
    assert mock.responses[-1][1] == 401
    await ledger.close()


async def test_a_ready_token_is_sent_as_is_and_no_token_means_no_header() -> None:
    ledger, mock = make_canton_ledger(CantonSettings(url="http://x", token="abc.def.ghi"))
    await ledger.party()
    assert {r.headers.get("authorization") for r in mock.requests} == {"Bearer abc.def.ghi"}
    bare, bare_mock = make_canton_ledger()
    await bare.party()
    assert {r.headers.get("authorization") for r in bare_mock.requests} == {None}
    await ledger.close()
    await bare.close()


# --- reads and verify ---------------------------------------------------------------------


async def test_history_metrics_and_audit(pair: tuple[CantonLedger, MockParticipant]) -> None:
    ledger, _ = pair
    await ledger.transfer("t-1", "alice", "bob", Decimal("10"), reason="one")
    await ledger.transfer("t-2", "bob", "alice", Decimal("5"), reference="ref")
    await ledger.transfer("r-1", "alice", "bob", Decimal("1.25"), kind="reward")
    history = await ledger.history("alice")
    assert [r.transfer_id for r in history] == ["r-1", "t-2", "t-1"]
    assert [r.transfer_id for r in await ledger.history("alice", limit=1)] == ["r-1"]
    metrics = await ledger.metrics()
    assert (metrics.wallets, metrics.supply, metrics.volume) == (
        2,
        Decimal("120.00"),
        Decimal("16.25"),
    )
    assert (metrics.transfers, metrics.rewards) == (2, 1)
    audit = await ledger.audit()
    assert [(e.kind, e.transfer_id) for e in audit] == [
        ("open", None),
        ("open", None),
        ("transfer", "t-1"),
        ("transfer", "t-2"),
        ("reward", "r-1"),
    ]
    assert audit[0].payee == "alice" and audit[0].amount == Decimal("100.00")
    assert [e.transfer_id for e in await ledger.audit(kind="reward")] == ["r-1"]
    assert len(await ledger.audit(since=audit[3].at)) == 2
    assert len(await ledger.audit(limit=2)) == 2


async def test_verify_replays_receipts_and_catches_a_tampered_balance(
    pair: tuple[CantonLedger, MockParticipant],
) -> None:
    ledger, mock = pair
    await ledger.transfer("t-1", "alice", "bob", Decimal("10"))
    await ledger.transfer("t-2", "bob", "alice", Decimal("25.5"))
    report = await ledger.verify()
    assert report.ok and (report.rows, report.wallets) == (4, 2)
    mock.set_balance("bob", Decimal("1000"))
    report = await ledger.verify()
    assert not report.ok
    assert report.problem is not None and "bob" in report.problem
    assert report.first_bad_seq == mock.wallet("bob").created_offset


# --- more contracts than the participant's list limit -------------------------------------

MANY = 250  # receipts: past the default http-list-max-elements-limit (200)


async def _many_receipts(version: str) -> tuple[CantonLedger, MockParticipant]:
    """alice (1000.00) has paid bob 0.01 MANY times: MANY receipts, 2 wallets."""
    ledger, mock = make_canton_ledger(version=version)
    await ledger.open_wallet("alice", Decimal("1000"))
    await ledger.open_wallet("bob", Decimal("0"))
    for i in range(MANY):
        await ledger.transfer(f"t-{i}", "alice", "bob", Decimal("0.01"))
    assert len(mock.active("TransferReceipt")) == MANY > mock.list_limit
    return ledger, mock


def _template(body: Any) -> str:
    """The one template an active-contracts request asks for."""
    [spec] = body["eventFormat"]["filtersByParty"].values()
    [only] = spec["cumulative"]
    return str(only["identifierFilter"]["TemplateFilter"]["value"]["templateId"])


async def test_past_the_list_limit_reads_page_through_on_3_5() -> None:
    ledger, mock = await _many_receipts("3.5")
    # Wallets are read on their own, so they stay on the list endpoint.
    assert await ledger.balance("bob") == Decimal("2.50")
    history = await ledger.history("bob", limit=MANY + 10)
    assert len(history) == MANY
    assert [r.transfer_id for r in history[:2]] == [f"t-{MANY - 1}", f"t-{MANY - 2}"]
    # One 413 for the receipts, then straight to the pages.
    assert mock.responses.count((ACS, 413, "HTTP_LIST_MAX_ELEMENTS_LIMIT_EXCEEDED")) == 1
    pages = [r.body for r in mock.requests_to(ACS_PAGE)]
    assert len(pages) == 3  # 100 + 100 + 50
    assert {_template(p) for p in pages} == {RECEIPT_TID}
    assert {p["activeAtOffset"] for p in pages} == {mock.offset}
    assert [p["maxPageSize"] for p in pages] == [100, 100, 100]
    assert "pageToken" not in pages[0] and pages[1]["pageToken"] != pages[2]["pageToken"]
    # Wallets and receipts of one read come from the same snapshot.
    wallet_reads = [r.body for r in mock.requests_to(ACS) if _template(r.body) == WALLET_TID]
    assert wallet_reads[-1]["activeAtOffset"] == pages[-1]["activeAtOffset"]

    metrics = await ledger.metrics()
    assert (metrics.wallets, metrics.transfers, metrics.volume, metrics.supply) == (
        2,
        MANY,
        Decimal("2.50"),
        Decimal("1000.00"),
    )
    assert mock.responses.count((ACS, 413, "HTTP_LIST_MAX_ELEMENTS_LIMIT_EXCEEDED")) == 1
    report = await ledger.verify()
    assert report.ok and (report.rows, report.wallets) == (MANY + 2, 2)
    assert len(await ledger.audit(limit=1000)) == MANY + 2
    first = await ledger.get_transfer("t-0")
    assert first is not None and first.payee_balance == Decimal("0.01")
    assert await ledger.get_transfer("t-nope") is None

    # A retried repeat is answered with the original receipt, whether the participant
    # deduplicates it (alice could pay again) ...
    assert await ledger.transfer(
        "t-7", "alice", "bob", Decimal("0.01")
    ) == await ledger.get_transfer("t-7")
    assert (FOR_TRANSACTION, 409, "DUPLICATE_COMMAND") in mock.responses
    # ... or the client sees it cannot be paid any more.
    spent = await ledger.transfer("all", "bob", "alice", Decimal("2.50"))
    submissions = len(mock.requests_to(FOR_TRANSACTION))
    assert await ledger.transfer("all", "bob", "alice", Decimal("2.50")) == spent
    with pytest.raises(DuplicateTransfer):
        await ledger.transfer("all", "bob", "alice", Decimal("2.49"))
    with pytest.raises(InsufficientFunds):
        await ledger.transfer("over", "bob", "alice", Decimal("0.01"))
    assert len(mock.requests_to(FOR_TRANSACTION)) == submissions
    assert (await ledger.balance("alice"), await ledger.balance("bob")) == (
        Decimal("1000.00"),
        Decimal("0.00"),
    )
    assert (await ledger.verify()).ok
    await ledger.close()


async def test_past_the_list_limit_on_3_4_reads_say_what_to_change() -> None:
    ledger, mock = await _many_receipts("3.4")
    limit = "http-list-max-elements-limit"
    for read in (
        ledger.history("bob"),
        ledger.metrics(),
        ledger.verify(),
        ledger.audit(),
        ledger.get_transfer("t-0"),
    ):
        with pytest.raises(LedgerError, match=limit) as caught:
            await read
        assert "3.5" in str(caught.value) and not caught.value.retryable
    assert (ACS_PAGE, 404, "") in mock.responses
    # Without the receipts a repeat and a refusal cannot be told apart, so both fail the same.
    with pytest.raises(LedgerError, match=limit):
        await ledger.transfer("t-7", "alice", "bob", Decimal("0.01"))
    with pytest.raises(LedgerError, match=limit):
        await ledger.transfer("over", "bob", "alice", Decimal("1000"))
    # Wallets are queried on their own: balances, the overview and new transfers still work.
    assert await ledger.balance("alice") == Decimal("997.50")
    assert [w.agent for w in await ledger.overview()] == ["alice", "bob"]
    receipt = await ledger.transfer("t-new", "bob", "alice", Decimal("1"))
    assert receipt.payer_balance == Decimal("1.50")
    await ledger.close()


async def test_pages_of_one_contract_each_still_read_everything() -> None:
    """A participant whose limit is 1: every read pages, one contract per page."""
    ledger, mock = make_canton_ledger(version="3.5")
    await ledger.open_wallet("alice", Decimal("10"))
    await ledger.open_wallet("bob", Decimal("10"))
    mock.list_limit = 1
    for i in range(3):
        await ledger.transfer(f"t-{i}", "alice", "bob", Decimal("1"))
    assert [w.agent for w in await ledger.overview()] == ["alice", "bob"]
    assert [r.transfer_id for r in await ledger.history("alice")] == ["t-2", "t-1", "t-0"]
    assert (await ledger.verify()).ok
    assert max(len(r.body.get("pageToken") or "") for r in mock.requests_to(ACS_PAGE)) > 0
    await ledger.close()
