"""`p2e` whose process SIGKILLs itself at a point named by its first argument, so that what
happened before is durable and the activity never reports back. Used by the crash tests:

- `commit`: right after the ledger commits its first transfer;
- `evaluation`: right after the first evaluation has scored and stored its records.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from p2engine.activities.evals import EvalActivities
from p2engine.ledger.embedded import EmbeddedLedger


def die_after(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`method`, then SIGKILL; wrapped so that an activity keeps its definition."""

    @functools.wraps(method)
    async def then_die(*args: Any, **kwargs: Any) -> Any:
        await method(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    return then_die


POINTS: dict[str, tuple[type, str]] = {
    "commit": (EmbeddedLedger, "transfer"),
    "evaluation": (EvalActivities, "evaluate"),
}

if __name__ == "__main__":
    owner, name = POINTS[sys.argv.pop(1)]
    setattr(owner, name, die_after(getattr(owner, name)))
    from p2engine.cli.main import main

    main()
