"""A worker puts what the process loaded before it beyond the cyclic collector, once per
process, after collecting what was already garbage."""

from __future__ import annotations

import gc
import weakref

from p2engine.runtime.worker import freeze_loaded


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_is_loaded_is_frozen_once_and_garbage_is_collected_first() -> None:
    gc.unfreeze()
    freeze_loaded.cache_clear()
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage
    loaded = Cycle()

    freeze_loaded()
    frozen = gc.get_freeze_count()
    assert gone() is None  # collected, not frozen for the life of the process
    assert not collectable(loaded)
    later = Cycle()
    freeze_loaded()
    assert gc.get_freeze_count() == frozen  # once: what comes later stays collectable
    assert collectable(later)


def collectable(obj: object) -> bool:
    """Whether the collector's generations hold `obj` (the frozen ones are apart)."""
    return any(o is obj for o in gc.get_objects())
