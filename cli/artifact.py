"""`p2e artifact`: the content a conversation stored, read from the artifact store the
settings choose (this machine's, or the database every worker shares): its nodes, their
tool results and their evaluations."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    print_json,
    run_async,
    settings_for,
)
from p2engine.contract.errors import InvalidInput

if TYPE_CHECKING:
    from p2engine.runtime.settings import Settings
    from p2engine.store.base import ArtifactStore

app = typer.Typer(help="Content stored by conversations.", no_args_is_help=True)

RefArgument = Annotated[str, typer.Argument(help="An artifact ref, or its first 6+ digits.")]


async def _read(store: ArtifactStore, ref: str) -> tuple[str, Any]:
    """The full ref and the content: a JSON record (node, evaluation) or text."""
    from p2engine.store.base import ArtifactNotFound, NotARef

    try:
        full = await store.resolve(ref)
        text = await store.get_text(full)
    except NotARef:
        raise InvalidInput(
            f"{ref!r} is no ref: a ref, or the start of one, is 6 to 64 hex digits"
        ) from None
    except ArtifactNotFound as exc:
        raise InvalidInput(f"no artifact {exc.args[0]} in {store.location}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"artifact {ref} is not text") from None
    try:
        return full, json.loads(text)
    except json.JSONDecodeError:
        return full, text


def kind_of(content: Any) -> str:
    if isinstance(content, dict) and isinstance(content.get("kind"), str):
        return str(content["kind"])
    return "Content"


@app.command("show")
def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id (conv-NAME) or NAME.")],
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Only this kind (e.g. Evaluation).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N.")] = 200,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Every node a conversation stored, oldest first: messages, tool calls, tool results
    with their content, and evaluations."""
    settings = settings_for(address, namespace)
    rows = run_async(_artifacts(settings, conversation))
    if kind is not None:
        known = sorted({r["kind"] for r in rows})
        rows = [r for r in rows if r["kind"].casefold() == kind.casefold()]
        if not rows and kind.casefold() not in {k.casefold() for k in known}:
            raise InvalidInput(f"no {kind} in this conversation; kinds: {', '.join(known)}")
    rows = rows[:limit]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} artifacts")
    for column in ("ref", "kind", "step"):
        table.add_column(column, no_wrap=True)
    table.add_column("content")
    for r in rows:
        table.add_row(r["ref"][:12], r["kind"], str(r["step"]), _preview(r["content"]))
    console.print(table)


async def _artifacts(settings: Settings, conversation: str) -> list[dict[str, Any]]:
    from p2engine.cli.conversation import stack_of
    from p2engine.store import store_for

    found = await stack_of(settings, conversation)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    async with store_for(settings) as store:

        async def add(ref: str | None, step: int) -> Any:
            if ref is None or ref in seen:
                return None
            seen.add(ref)
            try:
                full, content = await _read(store, ref)
            except InvalidInput:
                content, full = f"(not in {store.location})", ref
            rows.append({"ref": full, "kind": kind_of(content), "step": step, "content": content})
            return content

        for entry in found.stack:
            node = await add(entry.ref, entry.step)
            if isinstance(node, dict):
                await add(node.get("result_ref"), entry.step)
            for outcome in entry.evaluations:
                await add(outcome.ref, entry.step)
    return rows


async def _read_all(refs: list[str]) -> list[tuple[str, Any]]:
    """Each ref's full ref and content, from the store the settings choose."""
    from p2engine.store import store_for

    async with store_for(settings_for()) as store:
        return [await _read(store, ref) for ref in refs]


def _preview(content: Any) -> str:
    if isinstance(content, dict):
        if content.get("kind") == "Evaluation":
            score = content.get("score") or {}
            shown = score.get("value", "error")
            return f"{content.get('evaluator_id')}: {shown} {score.get('rationale', '')}".strip()
        if not content.get("text") and content.get("result_ref"):
            return f"{content.get('tool_name')} result: {str(content['result_ref'])[:12]}"
        calls = [f"{c['name']}({c['arguments']})" for c in content.get("tool_calls", [])]
        text = " ".join([str(content.get("text") or ""), *calls]).strip()
        return (text or json.dumps(content))[:120]
    return str(content)[:120]


@app.command("cat")
def cat(ref: RefArgument) -> None:
    """Print one artifact: a record as indented JSON, content as it was stored."""
    [(_, content)] = run_async(_read_all([ref]))
    if isinstance(content, str):
        console.print(content, highlight=False, markup=False)
    else:
        print_json(content)


@app.command("diff")
def diff(first: RefArgument, second: RefArgument) -> None:
    """Show how two artifacts differ: the text of two messages line by line, any other
    record as its JSON, keys sorted."""
    (ref_a, a), (ref_b, b) = run_async(_read_all([first, second]))
    lines_a, lines_b = _lines(a), _lines(b)
    changed = list(difflib.unified_diff(lines_a, lines_b, ref_a[:12], ref_b[:12], lineterm="", n=3))
    console.print("\n".join(changed) if changed else "no difference", highlight=False, markup=False)


def _lines(content: Any) -> list[str]:
    if isinstance(content, dict) and "text" in content and content.get("kind") != "Evaluation":
        return str(content.get("text") or "").splitlines()
    if isinstance(content, str):
        return content.splitlines()
    return json.dumps(content, indent=2, sort_keys=True).splitlines()
