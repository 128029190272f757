"""Entry point of `p2e`: assembles the command groups and turns errors into one line."""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from typing import Any

import typer
from typer.exceptions import Abort, TyperException

from p2engine.cli import (
    agent,
    artifact,
    branches,
    chat,
    config,
    conversation,
    db,
    evals,
    learn,
    ledger,
    replay,
    rollouts,
    run,
    server,
    tools,
    trace,
    worker,
)
from p2engine.cli.common import visible
from p2engine.contract.errors import P2eError
from p2engine.runtime.script import exit_process

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
app.command("replay")(replay.replay)
app.command("trace")(trace.trace)
app.add_typer(server.app, name="server")
app.add_typer(db.app, name="db")
app.add_typer(agent.app, name="agent")
conversation.app.command("branch")(branches.branch)
conversation.app.command("branches")(branches.branches)
conversation.app.command("rewind")(branches.rewind)
conversation.app.command("checkout")(branches.checkout)
app.add_typer(conversation.app, name="conversation")
app.add_typer(config.app, name="config")
app.add_typer(ledger.app, name="ledger")
app.add_typer(evals.app, name="eval")
app.add_typer(artifact.app, name="artifact")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(learn.app, name="learn")
app.add_typer(tools.app, name="tools")


def _one_line(exc: BaseException) -> str | None:
    """The message for an error a user can cause or fix; None for a bug."""
    if isinstance(exc, P2eError):
        return str(exc)
    client = sys.modules.get("temporalio.client")
    if client is not None and isinstance(exc, client.WorkflowUpdateFailedError):
        cause = exc.cause
        return f"refused: {getattr(cause, 'message', None) or cause}"
    rpc = sys.modules.get("temporalio.service")
    if rpc is not None and isinstance(exc, rpc.RPCError):
        return f"Temporal refused the request: {exc.message}"
    sqlite = sys.modules.get("sqlite3")
    if sqlite is not None and isinstance(exc, sqlite.DatabaseError):
        return f"SQLite: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, UnicodeError | OverflowError):
        return f"{exc.__class__.__name__}: {exc}"
    return None


def _usage_error(exc: Exception) -> str | None:
    """A command-line usage error (unknown option, bad value) as one line."""
    if not isinstance(exc, TyperException) or not hasattr(exc, "format_message"):
        return None
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"{exc.format_message()}{hint}"


def _error(message: str) -> None:
    sys.stderr.write(f"error: {visible(' '.join(message.splitlines()))}\n")


def command() -> Any:
    """The app as click runs it, with flags shown in `--help` without a `<bool>` type (a
    flag takes no value) and each paragraph of a command's help reflowed to the terminal.
    (Typer brings its own click; its objects are reached by duck typing, not by its
    private module.)"""
    built = typer.main.get_command(app)
    _for_the_terminal(built)
    return built


def reflowed(help_text: str) -> str:
    """A docstring's paragraphs as one line each, for the help to wrap at the terminal's
    width (Typer keeps a docstring's line breaks, which leaves ragged lines at 80 columns);
    a paragraph of list items or indented lines keeps its breaks."""
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    return "\n\n".join(
        p
        if any(line.startswith(("- ", "* ", " ", "\b")) for line in p.splitlines())
        else " ".join(p.split("\n"))
        for p in paragraphs
    )


def _for_the_terminal(cmd: Any) -> None:
    if cmd.help:
        cmd.help = reflowed(cmd.help)
    for param in cmd.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    make_help_option = cmd.get_help_option  # click adds --help when it renders the help

    def help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    cmd.get_help_option = help_option
    for sub in getattr(cmd, "commands", {}).values():
        _for_the_terminal(sub)


def _run() -> int:
    try:
        code = command().main(standalone_mode=False, prog_name="p2e")
    except SystemExit as done:
        if isinstance(done.code, str):
            sys.stderr.write(done.code + "\n")
            return 1
        return done.code or 0
    except (KeyboardInterrupt, Abort):
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # the reader went away (`p2e ... | head`): stop quietly
        return 141
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `p2e ledger` alone: show its help
            sys.stdout.write(str(getattr(exc, "format_message", exc.__str__)()) + "\n")
            return 2
        if os.environ.get("P2E_DEBUG"):
            traceback.print_exc()
        if (usage := _usage_error(exc)) is not None:
            _error(usage)
            return int(getattr(exc, "exit_code", 2))
        if (message := _one_line(exc)) is not None:
            _error(message)
            return int(getattr(exc, "exit_code", 2))
        _error(f"internal error {exc.__class__.__name__}: {exc} (P2E_DEBUG=1 shows the traceback)")
        return 1
    return int(code or 0)


def main() -> None:
    from p2engine.cli import logs

    logs.wanted = True
    code = _run()
    if (telemetry := sys.modules.get("p2engine.runtime.telemetry")) is not None:
        telemetry.stop_tracing()  # spans still queued for the exporter
    exit_process(code)


if __name__ == "__main__":
    main()
