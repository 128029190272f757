"""The sandbox every workflow of ours runs in, and the code cache that keeps it cheap.

The sandbox imports a workflow's module afresh for every run, so that no run sees another's
module state. Executing the module again is the price of that isolation; compiling its
source again is not: where bytecode files are not written (PYTHONDONTWRITEBYTECODE, a
read-only install, a source file edited since its .pyc), every run would recompile, which
costs more than the rest of the import. The code cache compiles each source file once per
worker process and hands the same code object to every later import inside the sandbox.
Outside the sandbox, imports are untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, SourceFileLoader
from types import CodeType, ModuleType

from temporalio import workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# (source path, mtime in ns, size) -> its code; an edited file gets a new key, so a worker
# that outlives an edit imports the new source in its next run.
_compiled: dict[tuple[str, int, int], CodeType] = {}


class _CachedCodeLoader(SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        stat = os.stat(self.path)
        key = (self.path, stat.st_mtime_ns, stat.st_size)
        code = _compiled.get(key)
        if code is None:
            code = super().get_code(fullname)
            if code is None:  # a loader's contract allows it; nothing worth keeping
                raise ImportError(f"no code for {fullname}", name=fullname)
            _compiled[key] = code
        return code


class CodeCache(MetaPathFinder):
    """Finds modules exactly as the finders after it do, and inside the sandbox only, gives
    plain source modules a loader that compiles each file once."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not workflow.unsafe.in_sandbox():
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, CodeCache):
                continue
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(fullname, path, target) if find else None
            if spec is None:
                continue
            loader = spec.loader
            if type(loader) is SourceFileLoader:
                spec.loader = _CachedCodeLoader(loader.name, loader.path)
            return spec
        return None


def install_code_cache() -> None:
    """Put the code cache first on the import path, once per process."""
    if not any(isinstance(finder, CodeCache) for finder in sys.meta_path):
        sys.meta_path.insert(0, CodeCache())


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with its default restrictions. Passing every module through would also
    save executing the workflow module for each run, but the workflow's own code would then
    reach the real `datetime` and `random` and could read the clock unrefused."""
    install_code_cache()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default)
