"""Ending a process that used Temporal's client: flush, then exit without Python's
finalization, whose teardown Temporal's native threads can abort (temporalio/sdk-python#300:
"Fatal Python error: PyGILState_Release"), so a script that finished its work never dies
with SIGABRT on its way out. `p2e` ends this way, and so can any script."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

from p2engine.contract.errors import P2eError


def exit_process(code: int) -> NoReturn:
    """Flush stdout and stderr and exit with `code`; skip finalization once Temporal's
    native client is loaded (nothing is left to flush by then)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError):
            stream.flush()
    if any(name.startswith("temporalio.bridge") for name in sys.modules):
        os._exit(code)
    sys.exit(code)


def run_script(main: Coroutine[Any, Any, int | None]) -> NoReturn:
    """Run a script's main coroutine and exit with what it returns (None: 0). A P2eError
    (bad input or configuration) is one line on stderr and its exit code, as in `p2e`."""
    try:
        code = asyncio.run(main) or 0
    except P2eError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    exit_process(code)
