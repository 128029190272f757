"""The Web UI's view of a conversation (Temporal's "current details"): pure text from state."""

from __future__ import annotations

from contract.models import ConversationState


def current_details(agent_id: str, s: ConversationState) -> str:
    """Agent, state, step, tokens and cost, then the last entry, like a transcript line."""
    last = s.stack[-1] if s.stack else None
    reason = f" ({s.reason})" if s.reason else ""
    run = f" · run {s.runs}" if s.runs > 1 else ""
    overrides = (
        f"\n\noverrides: {s.overrides.model_dump_json(exclude_none=True)}"
        if s.overrides.active()
        else ""
    )
    return (
        f"**{agent_id}** · state **{s.state}**{reason} · step {s.step} · "
        f"{s.usage.total_tokens} tokens · ${s.usage.cost_usd:.4f}{run}\n\n"
        f"last: {last.kind if last else '-'} {last.preview if last else ''}{overrides}"
    )
