"""The public API: `p2engine`'s names are the ones `__all__` lists, each documented, loaded
on first use; and the package's folders are reachable only under its name."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import p2engine

FOLDERS = ["contract", "store", "agents", "ledger", "evals", "workflows", "activities",
           "runtime", "cli"]  # fmt: skip


def test_all_lists_exactly_the_names_the_package_resolves() -> None:
    assert p2engine.__all__ == sorted(p2engine._EXPORTS)
    for name in p2engine.__all__:
        assert getattr(p2engine, name) is not None
    assert set(p2engine.__all__) <= set(dir(p2engine))


def own_doc(obj: object) -> str | None:
    """The docstring `obj` itself has: not one inherited from a base class (pydantic's)."""
    target = typing.get_origin(obj) or obj  # a handle alias: the generic it specialises
    if inspect.isclass(target):
        return vars(target).get("__doc__")
    return getattr(target, "__doc__", None)


def test_every_public_name_says_what_it_is_for() -> None:
    undocumented = [name for name in p2engine.__all__ if not own_doc(getattr(p2engine, name))]
    assert undocumented == []


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'build_worker'"):
        _ = p2engine.build_worker


def test_importing_the_package_loads_neither_temporal_nor_litellm(tmp_path: Path) -> None:
    probe = (
        "import sys, p2engine\n"
        "from p2engine import tool, evaluator, AgentSpec\n"
        "print([m for m in ('litellm', 'temporalio.client', 'temporalio.worker')"
        " if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_folder_imports_under_p2engine_only(folder: str, tmp_path: Path) -> None:
    # A distribution of the same top-level name (openai-agents ships `agents`) may be
    # installed beside us; what must not happen is our own folder answering to that name.
    probe = (
        f"import importlib.util, pathlib, p2engine, p2engine.{folder}\n"
        f"spec = importlib.util.find_spec({folder!r})\n"
        f"ours = pathlib.Path(p2engine.{folder}.__file__).resolve()\n"
        "print(spec is None or pathlib.Path(spec.origin or '').resolve() != ours)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"
