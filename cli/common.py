"""Options and helpers every command shares. Nothing heavy is imported here: `p2e --help`
must stay fast, so Temporal and litellm load inside the commands that need them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.text import Text

from p2engine.runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from temporalio.client import Client

T = TypeVar("T")

# Bidirectional-text controls can make a terminal show text in another order than it is.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def visible(text: str) -> str:
    """`text` with control characters shown as escapes (`\\x1b`), so content from users,
    models and tools cannot colour, retitle or clear the terminal. Newlines and tabs stay;
    bytes that were not UTF-8 (lone surrogates from argv) show as the bytes they were."""
    out = []
    for char in text:
        code = ord(char)
        if _as_is(char):
            out.append(char)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def _special(code: int) -> bool:
    return code in _BIDI or 0xD800 <= code <= 0xDFFF


def _as_is(char: str) -> bool:
    """Whether a character is shown as it is: printable, or a newline or a tab."""
    code = ord(char)
    return char in "\n\t" or (32 <= code < 127) or (code > 159 and not _special(code))


class SafeConsole(Console):
    """A console that shows every string it renders through `visible()`: print arguments,
    table cells, titles and captions all pass through `render_str`."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)


# Printed text is agent and user content, never Rich markup: "[ok]" must stay as it is.
console = SafeConsole(soft_wrap=True, markup=False)
err_console = SafeConsole(stderr=True, soft_wrap=True, markup=False)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Temporal host:port to use instead of the embedded dev server [env: TEMPORAL_ADDRESS]",
        show_default=False,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", help="Temporal namespace [env: TEMPORAL_NAMESPACE]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RerunOption = Annotated[
    bool, typer.Option("--rerun", help="Show it live in the Rerun viewer (needs a display).")
]
RerunSaveOption = Annotated[
    Path | None,
    typer.Option("--rerun-save", metavar="FILE.rrd", help="Write a Rerun recording of it."),
]
RerunServeOption = Annotated[
    bool,
    typer.Option(
        "--rerun-serve",
        help="Serve a Rerun web viewer of it on a local port (the URL is printed); it stays "
        "up after the end, until Ctrl-C.",
    ),
]


def settings_for(address: str | None = None, namespace: str | None = None) -> Settings:
    """The settings, with the flags over them; a database they name that does not answer
    is refused here, before the command starts anything."""
    from p2engine.store import check_reachable

    settings = load_settings({"temporal.address": address, "temporal.namespace": namespace})
    check_reachable(settings)
    return settings


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    from p2engine.cli import logs

    if logs.wanted:
        logs.summarise_sdk_logs()
    return asyncio.run(coro)


def print_json(data: Any) -> None:
    """`data` as indented JSON: text as it is (15°C, 東京), but every character `visible()`
    would escape written as a JSON escape (\\u001b), so the output is valid JSON that no
    content can use to steer the terminal."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("".join(_json_char(c) for c in text) + "\n")


def _json_char(char: str) -> str:
    # A lone surrogate included: it stands for a byte, as in visible().
    return char if _as_is(char) else f"\\u{ord(char):04x}"


def note(message: str) -> None:
    """Progress and context go to stderr, so stdout stays clean for the answer or JSON."""
    err_console.print(message, style="dim", highlight=False)


def ui_url(settings: Settings, workflow_id: str | None = None) -> str | None:
    if settings.temporal.address:
        base = settings.temporal.ui_url
    else:
        from p2engine.runtime.temporal_server import load_dev_server_config

        base = load_dev_server_config(settings).ui_url
    if base is None:
        return None
    base = base.rstrip("/") + f"/namespaces/{quote(settings.temporal.namespace, safe='')}/workflows"
    return f"{base}/{quote(workflow_id, safe='')}" if workflow_id else base


async def warn_without_worker(client: Client, settings: Settings) -> None:
    """Say so when what was just started will wait: no worker polls its task queue."""
    from p2engine.runtime.worker import standing_worker_present

    if not await standing_worker_present(client, settings):
        note(
            f"no worker serves task queue '{settings.temporal.task_queue}' yet: nothing runs "
            "until one does (p2e worker)"
        )


@asynccontextmanager
async def serving(client: Client, settings: Settings) -> AsyncIterator[None]:
    """Make sure a worker serves the task queue while the block runs: a standing `p2e worker`
    if one polls, otherwise one in this process."""
    from p2engine.runtime.worker import build_workers, serving_all, standing_worker_present

    if await standing_worker_present(client, settings):
        if settings.telemetry.on:
            note(
                "tracing is on here, but a standing worker runs this: spans are written only "
                "if P2E_OTEL_EXPORTER is set in the worker's environment too"
            )
        yield
        return
    note("no worker is running; running one in this process")
    async with serving_all(build_workers(client, settings, ephemeral=True)):
        yield
