"""`p2e ledger`: agent wallets and transfers on the configured ledger (embedded or Canton)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from p2engine.cli.common import JsonOption, console, note, print_json, run_async, settings_for
from p2engine.cli.tables import Col, moment, print_table
from p2engine.contract.errors import P2eError

if TYPE_CHECKING:
    from p2engine.ledger.base import Ledger
    from p2engine.ledger.models import Receipt

T = TypeVar("T")

app = typer.Typer(
    help="Agent wallets and transfers on the ledger (backend: ledger.backend in p2e.yaml).",
    no_args_is_help=True,
)
MAX_ROWS = 10_000
AgentArg = Annotated[str, typer.Argument(help="Agent id (its wallet).", show_default=False)]
LimitOption = Annotated[
    int, typer.Option("--limit", "-n", help="At most N rows.", min=1, max=MAX_ROWS)
]


class EntryKindChoice(StrEnum):
    open = "open"
    transfer = "transfer"
    reward = "reward"


def _with_ledger(action: Callable[[Ledger], Awaitable[T]], create: bool = False) -> T:
    """Run `action` on the configured ledger; only `init` passes `create`."""
    from p2engine.runtime.settings import ledger_for

    settings = settings_for()

    async def run() -> T:
        ledger = ledger_for(settings, create=create)
        try:
            return await action(ledger)
        finally:
            await ledger.close()

    return run_async(run())


@app.command()
def init(
    balance: Annotated[
        str | None,
        typer.Option("--balance", help="Units for each new wallet [default: initial_balance]."),
    ] = None,
) -> None:
    """Create the ledger if there is none, and open a wallet for every agent in agents.yml;
    existing wallets are left as they are."""
    from p2engine.agents.registry import AgentRegistry
    from p2engine.ledger.models import parse_balance
    from p2engine.runtime.settings import load_settings

    settings = load_settings()
    initial = parse_balance(settings.ledger.initial_balance if balance is None else balance)
    agents = AgentRegistry.load(settings.agents_file).ids

    async def action(ledger: Ledger) -> list[tuple[str, Decimal, bool]]:
        opened = []
        for agent in agents:
            wallet, created = await ledger.open_wallet(agent, initial)
            opened.append((agent, wallet.balance, created))
        return opened

    print_table(
        console,
        f"Wallets ({settings.ledger.backend} ledger)",
        [Col("agent"), Col("balance", "number"), Col("")],
        [
            [agent, f"{amount:.2f}", "opened" if created else "already open"]
            for agent, amount, created in _with_ledger(action, create=True)
        ],
    )


@app.command()
def balance(agent: AgentArg, as_json: JsonOption = False) -> None:
    """An agent's balance."""
    amount = _with_ledger(lambda ledger: ledger.balance(agent))
    if as_json:
        print_json({"agent": agent, "balance": f"{amount:.2f}"})
    else:
        console.print(f"{agent}: {amount:.2f}", highlight=False)


@app.command(context_settings={"ignore_unknown_options": True})
def transfer(
    payer: Annotated[str, typer.Argument(help="Paying agent.", show_default=False)],
    payee: Annotated[str, typer.Argument(help="Receiving agent.", show_default=False)],
    amount: Annotated[str, typer.Argument(help="Amount, at most 2 decimals.", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")] = "",
    transfer_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Your name for the transfer (stored as user:ID); repeating it never pays twice "
            "[default: new].",
        ),
    ] = None,
) -> None:
    """Move AMOUNT from PAYER's wallet to PAYEE's."""
    from p2engine.contract.errors import refuse
    from p2engine.contract.ids import name_problem, user_key
    from p2engine.ledger.models import parse_amount
    from p2engine.runtime.settings import load_settings

    if transfer_id is not None:
        refuse(name_problem(transfer_id, "--id"))
    value = parse_amount(amount, load_settings().ledger.max_transfer)  # names the text as typed
    identifier = user_key(
        transfer_id or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    )

    async def pay(ledger: Ledger) -> tuple[Receipt, bool]:
        earlier = await ledger.get_transfer(identifier)
        receipt = await ledger.transfer(identifier, payer, payee, value, reason, "cli")
        return receipt, earlier is not None

    receipt, repeated = _with_ledger(pay)
    balance = "" if repeated else f" ({receipt.payer} now {receipt.payer_balance:.2f})"
    console.print(
        f"{receipt.transfer_id}: {receipt.payer} -> {receipt.payee} {receipt.amount:.2f}{balance}",
        highlight=False,
    )
    if repeated:
        note(f"recorded before, at {moment(receipt.at)}: nothing moved now")


@app.command()
def history(agent: AgentArg, limit: LimitOption = 20, as_json: JsonOption = False) -> None:
    """An agent's transfers, newest first, with the conversation that made each."""
    receipts = _with_ledger(lambda ledger: ledger.history(agent, limit))
    if as_json:
        print_json([r.model_dump(mode="json") for r in receipts])
        return
    _print_receipts(f"{agent}: {len(receipts)} transfers", receipts)


@app.command()
def overview(as_json: JsonOption = False) -> None:
    """Every wallet and the ledger's totals."""

    async def action(ledger: Ledger) -> tuple[list[Any], Any]:
        return await ledger.overview(), await ledger.metrics()

    wallets, metrics = _with_ledger(action)
    if as_json:
        print_json(
            {
                "wallets": [w.model_dump(mode="json") for w in wallets],
                "metrics": metrics.model_dump(mode="json"),
            }
        )
        return
    print_table(
        console,
        f"Wallets ({len(wallets)})",
        [Col("agent"), Col("balance", "number"), Col("opened", drop=1)],
        [[w.agent, f"{w.balance:.2f}", moment(w.opened_at)] for w in wallets],
    )
    console.print(
        f"supply {metrics.supply:.2f} · volume {metrics.volume:.2f} · "
        f"{metrics.transfers} transfers · {metrics.rewards} rewards",
        highlight=False,
    )


@app.command()
def audit(
    since: Annotated[
        str | None, typer.Option("--since", help="ISO date or time, e.g. 2026-11-22.")
    ] = None,
    kind: Annotated[EntryKindChoice | None, typer.Option("--kind", help="Only this kind.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """The ledger's journal in order: openings, transfers and rewards."""
    start = _since(since)
    entries = _with_ledger(lambda ledger: ledger.audit(start, kind.value if kind else None, limit))
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    columns = [
        Col("seq", "number"),
        Col("at", drop=3),
        Col("kind"),
        Col("from"),
        Col("to"),
        Col("amount", "number"),
        Col("reason", "text", drop=2),
        Col("reference", drop=4),
        Col("hash", drop=5),
    ]
    rows = [
        [str(e.seq), moment(e.at), e.kind, e.payer or "-", e.payee, f"{e.amount:.2f}",
         e.reason, e.reference, e.hash]
        for e in entries
    ]  # fmt: skip
    print_table(console, f"Journal ({len(entries)} rows)", columns, rows)


@app.command()
def metrics(as_json: JsonOption = False) -> None:
    """Supply, volume and counts."""
    figures = _with_ledger(lambda ledger: ledger.metrics())
    if as_json:
        print_json(figures.model_dump(mode="json"))
        return
    console.print(
        f"wallets {figures.wallets} · supply {figures.supply:.2f} · volume {figures.volume:.2f}"
        f" · transfers {figures.transfers} · rewards {figures.rewards}",
        highlight=False,
    )


@app.command()
def verify() -> None:
    """Check the file, the journal's hash chain, and every balance and receipt against the
    journal; exit 1 at the first problem."""
    report = _with_ledger(lambda ledger: ledger.verify())
    if report.ok:
        console.print(
            f"ledger ok: {report.rows} journal rows, {report.wallets} wallets", highlight=False
        )
        return
    console.print(f"ledger BROKEN: {report.problem}", highlight=False)
    raise typer.Exit(1)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise P2eError(f"--since must be an ISO date or time, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_receipts(title: str, receipts: list[Receipt]) -> None:
    columns = [
        Col("at", drop=2),
        Col("kind"),
        Col("from"),
        Col("to"),
        Col("amount", "number"),
        Col("reason", "text", drop=3),
        Col("reference", drop=1),
        Col("transfer id"),
    ]
    rows = [
        [moment(r.at), r.kind, r.payer, r.payee, f"{r.amount:.2f}", r.reason, r.reference,
         r.transfer_id]
        for r in receipts
    ]  # fmt: skip
    print_table(console, title, columns, rows)
