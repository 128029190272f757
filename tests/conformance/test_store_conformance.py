"""The artifact store and the tool cache, on every backend (store/base.py): the local
directory and SQLite file of the embedded default, and PostgreSQL (`P2E_DATABASE_URL`) on the
test session's real server, a fresh database per test; and the worker's remembering store
and tool cache over the local ones."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from p2engine.contract.models import ContentNode
from p2engine.contract.states import State
from p2engine.database.postgres import SchemaTooNew
from p2engine.runtime.settings import Settings
from p2engine.store import open_store, open_tool_cache
from p2engine.store.base import (
    ArtifactNotFound,
    ArtifactStore,
    NotARef,
    StoreUnavailable,
    ToolCache,
)
from p2engine.store.postgres import PostgresArtifactStore, PostgresToolCache
from p2engine.store.remembering import RememberingStore, RememberingToolCache

BACKENDS = [pytest.param("local", id="local"), pytest.param("postgres", id="postgres")]
STORES = [*BACKENDS, pytest.param("remembering", id="remembering")]


def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue("database_url") if backend == "postgres" else None
    return Settings(state_dir=tmp_path, database_url=url)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ArtifactStore]:
    if request.param == "remembering":
        opened: ArtifactStore = RememberingStore(open_store(Settings(state_dir=tmp_path)))
    else:
        opened = open_store(settings_for(request.param, tmp_path, request))
    yield opened
    await opened.close()


@pytest.fixture(params=STORES)
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ToolCache]:
    if request.param == "remembering":
        opened: ToolCache = RememberingToolCache(open_tool_cache(Settings(state_dir=tmp_path)))
    else:
        opened = open_tool_cache(settings_for(request.param, tmp_path, request))
    yield opened
    await opened.close()


def node(kind: State, parent: str | None, step: int, **extra: Any) -> ContentNode:
    return ContentNode(
        kind=kind, parent=parent, conversation_id="conv-1", step=step, agent_id="agent_alpha",
        **extra,
    )  # fmt: skip


def test_the_settings_choose_the_backend(tmp_path: Path) -> None:
    local = Settings(state_dir=tmp_path)
    shared = Settings(state_dir=tmp_path, database_url="postgresql://u@db.example/p2e")
    assert open_store(local).location == str(tmp_path / "artifacts")
    assert isinstance(open_store(shared), PostgresArtifactStore)
    assert isinstance(open_tool_cache(shared), PostgresToolCache)
    assert open_store(shared).location == "postgresql://u@db.example/p2e"


async def test_a_ref_is_the_sha256_of_the_bytes_and_reads_back(store: ArtifactStore) -> None:
    data = b"\x00binary\xffcontent"
    ref = await store.put_bytes(data)
    assert ref == hashlib.sha256(data).hexdigest()
    assert await store.get_bytes(ref) == data
    assert await store.put_bytes(data) == ref  # again: the same ref, nothing new
    text_ref = await store.put_text("15°C in Paris")
    assert await store.get_text(text_ref) == "15°C in Paris"


async def test_a_missing_ref_is_artifact_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        await store.get_bytes("0" * 64)
    with pytest.raises(ArtifactNotFound):
        await store.get_node("f" * 64)


async def test_a_chain_reads_oldest_first_from_its_head(store: ArtifactStore) -> None:
    first = node(State.USER_MESSAGE, None, 0, text="weather in Paris?")
    second = node(State.ASSISTANT_MESSAGE, first.ref(), 1, text="15°C")
    third = node(State.USER_MESSAGE, second.ref(), 2, text="and Rome?")
    for each in (third, first, second):  # stored in any order
        assert await store.put_node(each) == each.ref()
    assert await store.chain(third.ref()) == [first, second, third]
    assert await store.chain(first.ref()) == [first]
    assert await store.get_node(second.ref()) == second


async def test_a_chain_with_a_missing_link_names_it(store: ArtifactStore) -> None:
    lost = node(State.USER_MESSAGE, None, 0, text="never stored")
    head = node(State.ASSISTANT_MESSAGE, lost.ref(), 1, text="orphan")
    await store.put_node(head)
    with pytest.raises(ArtifactNotFound) as missing:
        await store.chain(head.ref())
    assert missing.value.args[0] == lost.ref()


async def test_a_prefix_resolves_to_the_one_ref_it_starts(store: ArtifactStore) -> None:
    refs = [await store.put_text(f"content {n}") for n in range(40)]
    ref = refs[0]
    assert await store.resolve(ref) == ref
    assert await store.resolve(ref[:6]) == ref
    # Two refs that share their first digits: the prefix they share names neither.
    by_start: dict[str, list[str]] = {}
    for each in refs:
        by_start.setdefault(each[:1], []).append(each)
    shared = next(group for group in by_start.values() if len(group) > 1)
    common = 1
    while shared[0][: common + 1] == shared[1][: common + 1]:
        common += 1
    if common >= 6:
        with pytest.raises(ArtifactNotFound, match="several"):
            await store.resolve(shared[0][:common])
    with pytest.raises(ArtifactNotFound):
        await store.resolve("abcdef" if not any(r.startswith("abcdef") for r in refs) else "fedcba")
    for bad in ("abcd", "xyz123", "ABCDEF", "g" * 64, "a" * 65):
        with pytest.raises(NotARef):
            await store.resolve(bad)


async def test_concurrent_writes_of_the_same_content_store_it_once(store: ArtifactStore) -> None:
    refs = await asyncio.gather(*(store.put_text("the same") for _ in range(20)))
    assert len(set(refs)) == 1
    assert await store.get_text(refs[0]) == "the same"


async def test_a_cache_entry_reads_back_until_it_expires(cache: ToolCache) -> None:
    assert await cache.get("get_weather:abc") is None
    await cache.put("get_weather:abc", "ref-1", ttl_s=60)
    assert await cache.get("get_weather:abc") == "ref-1"
    await cache.put("get_weather:abc", "ref-2", ttl_s=60)  # a newer result replaces it
    assert await cache.get("get_weather:abc") == "ref-2"
    await cache.put("get_weather:old", "ref-3", ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await cache.get("get_weather:old") is None


# --- PostgreSQL only ----------------------------------------------------------------------


async def test_two_stores_opening_a_new_database_at_once_make_its_tables_once(
    database_url: str,
) -> None:
    stores = [PostgresArtifactStore(database_url) for _ in range(4)]
    refs = await asyncio.gather(*(s.put_text(f"first {n}") for n, s in enumerate(stores)))
    assert [await stores[0].get_text(ref) for ref in refs] == [f"first {n}" for n in range(4)]
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT component, version FROM p2e_schema").fetchall()
    assert ("artifacts", 1) in rows
    for each in stores:
        await each.close()


async def test_tables_from_a_newer_p2e_are_refused(database_url: str) -> None:
    warm = PostgresArtifactStore(database_url)
    await warm.put_text("x")
    await warm.close()
    with psycopg.connect(database_url) as connection:
        connection.execute("UPDATE p2e_schema SET version = 99 WHERE component = 'artifacts'")
    later = PostgresArtifactStore(database_url)
    with pytest.raises(SchemaTooNew, match="version 99, made by a newer p2e"):
        await later.get_text("0" * 64)
    await later.close()


async def test_an_unreachable_database_is_store_unavailable_not_a_hang() -> None:
    store = PostgresArtifactStore("postgresql://postgres@127.0.0.1:1/p2e")
    with pytest.raises(StoreUnavailable, match=r"postgresql://postgres@127\.0\.0\.1:1/p2e"):
        await asyncio.wait_for(store.put_text("x"), timeout=60)  # a hang fails, not waits
    await store.close()
