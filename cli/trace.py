"""`p2e trace`: a workflow's trace as a tree, read from the span file that the `file` exporter
writes (P2E_OTEL_EXPORTER=file), with each span's duration, tokens and status."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2engine.cli.common import JsonOption, console, print_json, settings_for
from p2engine.contract.errors import InvalidInput

if TYPE_CHECKING:
    from rich.tree import Tree

    from p2engine.runtime.telemetry import TraceSpan


def trace(
    workflow_id: Annotated[
        str, typer.Argument(help="A conversation (conv-NAME or NAME), arm or rollout id.")
    ],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A span file; default: traces.jsonl in the state dir."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the trace a workflow's spans belong to: its conversation, model calls, tool
    calls, delegations (the child under the call), evaluations and transfers."""
    from p2engine.runtime.conversations import conversation_id
    from p2engine.runtime.telemetry import WHERE_SPANS_COME_FROM, read_spans, traces_of

    spans = read_spans(file or settings_for().traces_file)
    roots = traces_of(spans, workflow_id)
    if not roots and not workflow_id.startswith("conv-"):
        workflow_id = conversation_id(workflow_id)
        roots = traces_of(spans, workflow_id)
    if not roots:
        raise InvalidInput(f"no spans of {workflow_id} in the span file: {WHERE_SPANS_COME_FROM}")
    if as_json:
        print_json([root.as_json() for root in roots])
        return
    for root in roots:
        console.print(_tree(root))


def _label(span: TraceSpan, parent: TraceSpan | None) -> str:
    from p2engine.runtime.telemetry import workflow_of

    parts = [span.name]
    workflow = workflow_of(span.record)
    if workflow is not None and (parent is None or workflow_of(parent.record) != workflow):
        parts.append(workflow)  # where a workflow's spans begin: which arm, which child
    if span.record.get("end_ns"):
        parts.append(f"{span.duration_ms:.1f} ms")
    else:
        parts.append("open")
    if (tokens := span.tokens) is not None:
        parts.append(f"{tokens[0]} in / {tokens[1]} out tokens")
    evaluations = [e for e in span.record.get("events", []) if e["name"].startswith("gen_ai.eval")]
    for event in evaluations:
        attributes = event["attributes"]
        score = attributes.get("gen_ai.evaluation.score.value", "-")
        parts.append(f"score {attributes.get('gen_ai.evaluation.name')}={score}")
    if transfer := span.record.get("attributes", {}).get("p2e.transfer.id"):
        parts.append(f"transfer {transfer}")
    if span.record.get("status") == "ERROR":
        parts.append(f"ERROR {span.record.get('status_description') or ''}".rstrip())
    return " · ".join(parts)


def _tree(root: TraceSpan, tree: Tree | None = None, parent: TraceSpan | None = None) -> Tree:
    from rich.tree import Tree

    label = _label(root, parent)
    node = Tree(label) if tree is None else tree.add(label)
    for child in root.children:
        _tree(child, node, root)
    return node
