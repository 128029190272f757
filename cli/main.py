"""Entry point of `p2e`: assembles the command groups and turns errors into one line."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import typer

from cli import agent, chat, config, conversation, ledger, run, server, worker
from cli.common import visible
from runtime.errors import P2eError

app = typer.Typer(
    name="p2e",
    help="P2Engine: durable multi-agent LLM conversations on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run.run)
app.command("chat")(chat.chat)
app.command("worker")(worker.worker)
app.add_typer(server.app, name="server")
app.add_typer(agent.app, name="agent")
app.add_typer(conversation.app, name="conversation")
app.add_typer(config.app, name="config")
app.add_typer(ledger.app, name="ledger")


def _one_line(exc: BaseException) -> str | None:
    """The message for an error a user can act on; None for a bug (keep its traceback)."""
    if isinstance(exc, P2eError):
        return str(exc)
    client = sys.modules.get("temporalio.client")
    if client is not None and isinstance(exc, client.WorkflowUpdateFailedError):
        cause = exc.cause
        return f"refused: {getattr(cause, 'message', None) or cause}"
    rpc = sys.modules.get("temporalio.service")
    if rpc is not None and isinstance(exc, rpc.RPCError):
        return f"Temporal refused the request: {exc.message}"
    return None


def _run() -> int:
    try:
        app()
    except SystemExit as done:
        if isinstance(done.code, str):
            sys.stderr.write(done.code + "\n")
            return 1
        return done.code or 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # the reader went away (`p2e ... | head`): stop quietly
        return 141
    except Exception as exc:
        message = _one_line(exc)
        if message is None:
            traceback.print_exc()  # a bug, not a user error: keep the whole story
            return 1
        sys.stderr.write(f"error: {visible(' '.join(message.splitlines()))}\n")
        return int(getattr(exc, "exit_code", 2))
    return 0


def main() -> None:
    code = _run()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    with contextlib.suppress(BrokenPipeError):
        sys.stderr.flush()
    if any(name.startswith("temporalio.bridge") for name in sys.modules):
        # The Temporal client's native threads can abort the interpreter while it finalizes
        # (temporalio/sdk-python#300); everything is flushed, so skip finalization.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
