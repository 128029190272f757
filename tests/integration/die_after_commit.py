"""`p2e` whose process SIGKILLs itself right after the ledger commits its first transfer:
the commit is durable, the activity never reports back. Used by the ledger crash test."""

from __future__ import annotations

import os
import signal
from typing import Any

from ledger.embedded import EmbeddedLedger
from ledger.models import Receipt

_commit = EmbeddedLedger.transfer


async def _commit_then_die(self: EmbeddedLedger, *args: Any, **kwargs: Any) -> Receipt:
    receipt = await _commit(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return receipt


EmbeddedLedger.transfer = _commit_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    from cli.main import main

    main()
