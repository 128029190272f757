"""Start a conversation from Python and print its stack.

    .venv/bin/python examples/conversation.py ["What's the weather in Paris?"]

It runs on the Temporal server the settings name (the embedded dev server by default,
started when needed) with a worker in this process, so nothing else has to be running.
"""

from __future__ import annotations

import sys

from p2engine import ConversationClient, load_settings, run_script, running_worker


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
    # Bad input or configuration (a P2eError) is one line and its exit code, as in `p2e`.
    run_script(main(" ".join(sys.argv[1:]) or "What's the weather in Paris?"))
