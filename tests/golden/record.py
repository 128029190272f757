"""Re-record the golden histories (`make golden`) after an intended workflow change.

Each file is one FSM path of ConversationWorkflow, run on a private dev server; the replay
tests then check on every run that the workflow code still produces exactly these histories.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from pathlib import Path

from agents.registry import AgentRegistry
from runtime.client import connect
from runtime.conversations import start_conversation
from runtime.settings import Settings, TemporalSettings
from runtime.temporal_server import private_dev_server
from runtime.worker import build_worker

GOLDEN_DIR = Path(__file__).parent
PROJECT_ROOT = GOLDEN_DIR.parent.parent

# name -> (agent id, agent changes, user message)
CASES: dict[str, tuple[str, dict[str, object], str]] = {
    "text_reply": ("agent_beta", {}, "hello"),
    "tool_call": ("agent_alpha", {}, "What's the weather in Paris?"),
    "tool_error": ("agent_alpha", {}, "What's the weather in Atlantis?"),
    "max_steps": ("agent_alpha", {"limits": {"max_steps": 2}}, "weather in Paris, Rome and Oslo"),
    "model_error": ("agent_alpha", {}, "simulate error 401"),
}


def scrub(history: str) -> str:
    """Identities and failure stack traces name this machine; keep that out of the repo."""
    history = history.replace(socket.gethostname(), "recorder")
    for prefix, label in ((PROJECT_ROOT, "/p2engine"), (sys.base_prefix, "/python")):
        history = history.replace(str(prefix), label)
    return history


async def record(state_dir: Path) -> None:
    with private_dev_server(state_dir) as server:
        settings = Settings(
            state_dir=state_dir,
            temporal=TemporalSettings(address=server.config.address, task_queue="golden"),
        )
        registry = AgentRegistry.load(settings.agents_file)
        client = await connect(settings)
        async with build_worker(client, settings):
            for name, (agent_id, changes, message) in CASES.items():
                spec = registry.get(agent_id).model_copy(update=changes)
                handle, _ = await start_conversation(
                    client, settings, spec, message, name=f"golden-{name}"
                )
                await handle.result()
                history = (await handle.fetch_history()).to_json()
                (GOLDEN_DIR / f"{name}.json").write_text(scrub(history))
                print(f"recorded {name}.json")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="p2e-golden-") as state_dir:
        asyncio.run(record(Path(state_dir)))


if __name__ == "__main__":
    main()
