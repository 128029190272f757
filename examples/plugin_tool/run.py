"""Use a tool from an installed plugin package, named in this folder's agents.yml.

    .venv/bin/pip install ./examples/plugin_tool
    .venv/bin/python examples/plugin_tool/run.py [CELSIUS]

The plugin registers `convert_temperature` through the `p2engine.tools` entry point, so
this script never imports it: p2e finds it, as `p2e worker` and `p2e run` would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from p2engine import ConversationClient, load_settings, run_script, running_worker

AGENTS_FILE = Path(__file__).with_name("agents.yml")


async def main(celsius: float) -> None:
    settings = load_settings({"agents_file": str(AGENTS_FILE)})
    conversations = ConversationClient(settings)
    # The scripted model calls a tool when asked to in these words.
    message = f"call convert_temperature with {json.dumps({'celsius': celsius})}"
    inp = conversations.build_input("thermometer", message)
    async with running_worker(settings, await conversations.temporal()):
        handle, _ = await conversations.start(inp)
        result = await conversations.result(handle)
    for entry in result.stack:
        if entry.tool_name is not None:
            print(f"{entry.kind:<10} {entry.preview}")
    print(f"thermometer: {result.reply_preview}")


if __name__ == "__main__":
    # Bad input or configuration (a P2eError) is one line and its exit code, as in `p2e`.
    run_script(main(float(sys.argv[1]) if len(sys.argv) > 1 else 21.0))
