"""Start a conversation from Python and print its stack.

    .venv/bin/python examples/conversation.py ["What's the weather in Paris?"]

It runs on the Temporal server the settings name (the embedded dev server by default,
started when needed) with a worker in this process, so nothing else has to be running.
"""

from __future__ import annotations

import asyncio
import sys

from p2engine import ConversationClient, P2eError, load_settings, running_worker


async def main(message: str) -> None:
    settings = load_settings()  # config/p2e.yaml < P2E_* variables
    conversations = ConversationClient(settings)
    async with running_worker(settings, await conversations.temporal()):
        handle, _ = await conversations.start(conversations.build_input("agent_alpha", message))
        print(f"started {handle.id}")
        result = await conversations.result(handle)
    print(f"finished: {result.reason} after {result.steps} steps")
    for entry in result.stack:
        print(f"{entry.step:>3}  {entry.kind:<16} {entry.agent_id:<12} {entry.preview}")


if __name__ == "__main__":
    try:
        asyncio.run(main(" ".join(sys.argv[1:]) or "What's the weather in Paris?"))
    except P2eError as exc:  # bad input or config: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
