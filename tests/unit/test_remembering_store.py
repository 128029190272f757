"""The worker's remembering store and tool cache: reads of what it wrote or read lately stay
in the process, writes always reach the backend, and what it remembers stays bounded."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from p2engine.contract.models import ContentNode
from p2engine.contract.states import State
from p2engine.store.artifacts import LocalArtifactStore
from p2engine.store.base import ArtifactNotFound
from p2engine.store.remembering import RememberingStore, RememberingToolCache
from p2engine.store.tool_cache import SqliteToolCache


class CountedStore(LocalArtifactStore):
    """The local backend, counting the calls that reach it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()

    def __getattribute__(self, name: str) -> Any:
        if name in {"identity", "put_bytes", "get_bytes", "put_text", "get_text", "put_node",
                    "get_node", "chain"}:  # fmt: skip
            object.__getattribute__(self, "calls")[name] += 1
        return object.__getattribute__(self, name)


@pytest.fixture
def backend(tmp_path: Path) -> CountedStore:
    return CountedStore(tmp_path / "artifacts")


def node(text: str, parent: str | None = None) -> ContentNode:
    return ContentNode(
        kind=State.TOOL_RESULT, parent=parent, conversation_id="c", step=1, agent_id="a",
        text=text,
    )  # fmt: skip


async def test_what_it_wrote_is_read_back_without_the_backend(backend: CountedStore) -> None:
    store = RememberingStore(backend)
    answer = node("sunny")
    text_ref = await store.put_text("22 C")
    node_ref = await store.put_node(answer)
    blob_ref = await store.put_bytes(b"\x00\xff")
    assert await store.get_text(text_ref) == "22 C"
    assert await store.get_node(node_ref) == answer
    assert await store.get_bytes(blob_ref) == b"\x00\xff"
    assert await store.get_bytes(node_ref) == await backend.get_bytes(node_ref)
    assert (backend.calls["get_text"], backend.calls["get_node"]) == (0, 0)
    assert backend.calls["get_bytes"] == 1  # the comparison's own read above


async def test_writes_always_reach_the_backend(backend: CountedStore, tmp_path: Path) -> None:
    store = RememberingStore(backend)
    ref = await store.put_text("once")
    await store.put_text("once")
    assert backend.calls["put_text"] == 2
    assert await LocalArtifactStore(tmp_path / "artifacts").get_text(ref) == "once"


async def test_what_another_worker_wrote_is_read_once(backend: CountedStore) -> None:
    ref = await LocalArtifactStore(backend.directory.root).put_node(node("cloudy"))
    store = RememberingStore(backend)
    first, second = await store.get_node(ref), await store.get_node(ref)
    assert first == second == node("cloudy")
    assert backend.calls["get_node"] == 1


async def test_a_node_read_back_is_a_copy(backend: CountedStore) -> None:
    store = RememberingStore(backend)
    ref = await store.put_node(node("rain"))
    (await store.get_node(ref)).text = "edited"
    assert (await store.get_node(ref)).text == "rain"


async def test_the_oldest_content_is_forgotten_past_the_budget(backend: CountedStore) -> None:
    store = RememberingStore(backend, budget=1600)  # content up to 100 bytes is remembered
    refs = [await store.put_text(f"{n:03d}" + "x" * 97) for n in range(17)]  # 100 bytes each
    assert await store.get_text(refs[0]) == "000" + "x" * 97  # 17 x 100 > 1600: forgotten
    assert backend.calls["get_text"] == 1
    await store.get_text(refs[-1])
    assert backend.calls["get_text"] == 1


async def test_content_over_a_sixteenth_of_the_budget_is_not_remembered(
    backend: CountedStore,
) -> None:
    store = RememberingStore(backend, budget=1600)
    ref = await store.put_text("y" * 101)
    await store.get_text(ref)
    assert backend.calls["get_text"] == 1


async def test_identity_is_asked_once(backend: CountedStore) -> None:
    store = RememberingStore(backend)
    assert await store.identity() == await store.identity() == await backend.identity()
    assert backend.calls["identity"] == 2  # the store's one, and the comparison's own


async def test_a_missing_ref_is_still_not_found(backend: CountedStore) -> None:
    with pytest.raises(ArtifactNotFound):
        await RememberingStore(backend).get_text("0" * 64)


# --- the tool cache ---------------------------------------------------------------------


class CountedCache(SqliteToolCache):
    """The local tool cache, counting the reads that reach it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gets = 0

    async def get(self, key: str) -> str | None:
        self.gets += 1
        return await super().get(key)


@pytest.fixture
async def cache_backend(tmp_path: Path) -> AsyncIterator[CountedCache]:
    backend = CountedCache(tmp_path / "tool-cache.db")
    yield backend
    await backend.close()


async def test_an_entry_it_put_is_answered_without_the_backend(
    cache_backend: CountedCache,
) -> None:
    cache = RememberingToolCache(cache_backend)
    await cache.put("get_weather:paris", "ref-1", ttl_s=60)
    assert await cache.get("get_weather:paris") == "ref-1"
    assert cache_backend.gets == 0
    assert await cache_backend.get("get_weather:paris") == "ref-1"  # and it reached the backend


async def test_an_entry_another_worker_put_is_read_from_the_backend(
    cache_backend: CountedCache,
) -> None:
    await cache_backend.put("get_weather:tokyo", "ref-2", ttl_s=60)
    assert await RememberingToolCache(cache_backend).get("get_weather:tokyo") == "ref-2"
    assert cache_backend.gets == 1


async def test_an_expired_entry_is_asked_of_the_backend(
    cache_backend: CountedCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = RememberingToolCache(cache_backend)
    await cache.put("get_weather:rome", "ref-3", ttl_s=60)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert await cache.get("get_weather:rome") is None
    assert cache_backend.gets == 1


async def test_the_oldest_entry_is_forgotten_past_the_limit(cache_backend: CountedCache) -> None:
    cache = RememberingToolCache(cache_backend, limit=2)
    for n in range(3):
        await cache.put(f"get_weather:{n}", f"ref-{n}", ttl_s=60)
    assert await cache.get("get_weather:2") == "ref-2" and cache_backend.gets == 0
    assert await cache.get("get_weather:0") == "ref-0" and cache_backend.gets == 1
