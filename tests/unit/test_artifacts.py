"""The content-addressed artifact store (store/artifacts.py): the directory and its async API."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from p2engine.contract.models import ContentNode, ToolCallRequest
from p2engine.contract.states import State
from p2engine.store.artifacts import ArtifactDirectory, ArtifactNotFound, LocalArtifactStore
from p2engine.store.base import ArtifactStore


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def node(kind: State, parent: str | None, step: int, **extra: Any) -> ContentNode:
    return ContentNode(
        kind=kind,
        parent=parent,
        conversation_id="conv-1",
        step=step,
        agent_id="agent_alpha",
        **extra,
    )


def test_put_bytes_returns_sha256_hex(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    data = b"hello artifacts"
    ref = store.put_bytes(data)
    assert ref == hashlib.sha256(data).hexdigest()
    assert store.get_bytes(ref) == data
    assert (tmp_path / ref[:2] / ref[2:]).read_bytes() == data


def test_put_bytes_is_idempotent_and_writes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactDirectory(tmp_path)
    real_replace = os.replace
    calls: list[object] = []

    def counting_replace(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        real_replace(*args, **kwargs)

    monkeypatch.setattr(os, "replace", counting_replace)
    first = store.put_bytes(b"same content")
    second = store.put_bytes(b"same content")
    assert first == second
    assert len(calls) == 1
    assert files_under(tmp_path) == [tmp_path / first[:2] / first[2:]]


def test_a_write_makes_the_folders_removed_since_the_last(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path / "artifacts")
    store.put_text("before")
    shutil.rmtree(tmp_path / "artifacts")  # a cleaned state dir, the process still running
    assert store.get_text(store.put_text("after")) == "after"


def test_an_artifact_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    ref = ArtifactDirectory(tmp_path).put_text("a private message")
    assert (tmp_path / ref[:2] / ref[2:]).stat().st_mode & 0o777 == 0o600


def test_text_round_trip(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    ref = store.put_text("héllo °C")
    assert store.get_text(ref) == "héllo °C"


def test_get_unknown_ref_raises(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("0" * 64)


@pytest.mark.parametrize(
    "ref",
    [
        "../etc",
        "abc",
        "",
        "../" + "a" * 61,
        "/" + "a" * 63,
        "A" * 64,
        "g" * 64,
        "a" * 65,
    ],
)
def test_invalid_ref_raises_without_touching_outside_root(tmp_path: Path, ref: str) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (tmp_path / "outside").write_text("secret")
    before = sorted(tmp_path.rglob("*"))
    store = ArtifactDirectory(root)
    with pytest.raises(ArtifactNotFound):
        store.get_bytes(ref)
    with pytest.raises(ArtifactNotFound):
        store.get_text(ref)
    with pytest.raises(ArtifactNotFound):
        store.get_node(ref)
    assert sorted(tmp_path.rglob("*")) == before


def test_put_node_returns_node_ref(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    n = node(State.USER_MESSAGE, None, 0, text="What's the weather in Paris?")
    ref = store.put_node(n)
    assert ref == n.ref()
    assert store.get_node(ref) == n


def test_chain_returns_nodes_oldest_first(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    first = node(State.USER_MESSAGE, None, 0, text="What's the weather in Paris?")
    first_ref = store.put_node(first)
    second = node(
        State.TOOL_CALL,
        first_ref,
        1,
        tool_calls=[ToolCallRequest(id="call_1", name="get_weather", arguments="{}")],
    )
    second_ref = store.put_node(second)
    third = node(State.TOOL_RESULT, second_ref, 2, tool_call_id="call_1", text="{}")
    third_ref = store.put_node(third)
    assert store.chain(third_ref) == [first, second, third]
    assert store.chain(first_ref) == [first]


def test_chain_with_missing_parent_raises(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    orphan = node(State.ASSISTANT_MESSAGE, "f" * 64, 1, text="hi")
    with pytest.raises(ArtifactNotFound):
        store.chain(store.put_node(orphan))


def test_no_temp_files_left_after_writes(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    for i in range(5):
        store.put_text(f"content {i}")
        store.put_text(f"content {i}")
    store.put_node(node(State.USER_MESSAGE, None, 0, text="x"))
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert len(files_under(tmp_path)) == 6


async def test_local_store_is_the_async_api_over_the_directory(tmp_path: Path) -> None:
    store: ArtifactStore = LocalArtifactStore(tmp_path)
    first = node(State.USER_MESSAGE, None, 0, text="hi")
    first_ref = await store.put_node(first)
    second = node(State.ASSISTANT_MESSAGE, first_ref, 1, text="hello")
    second_ref = await store.put_node(second)
    assert await store.chain(second_ref) == [first, second]
    assert await store.get_node(first_ref) == first
    text_ref = await store.put_text("héllo")
    assert await store.get_text(text_ref) == "héllo"
    assert await store.get_bytes(text_ref) == "héllo".encode()
    assert await store.put_bytes(b"x") == ArtifactDirectory(tmp_path).put_bytes(b"x")
    with pytest.raises(ArtifactNotFound):
        await store.get_text("0" * 64)


async def test_local_store_reads_and_writes_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalArtifactStore(tmp_path)
    threads: list[str] = []
    real_write = ArtifactDirectory._write

    def recording_write(self: ArtifactDirectory, ref: str, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        real_write(self, ref, data)

    monkeypatch.setattr(ArtifactDirectory, "_write", recording_write)
    await store.put_text("off the loop")
    assert threads and threading.main_thread().name not in threads


def test_a_ref_is_found_by_a_unique_prefix_of_six_digits_or_more(tmp_path: Path) -> None:
    store = ArtifactDirectory(tmp_path)
    ref = store.put_text("content")
    assert store.resolve(ref) == ref
    assert store.resolve(ref[:6]) == ref
    for bad in ("", ref[:5], "xyzxyzxyz", ref[:6].upper(), "0" * 64 if ref[0] != "0" else "1" * 64):
        with pytest.raises(ArtifactNotFound):
            store.resolve(bad)
    # Two refs that share their first 8 digits: the 8-digit prefix names neither.
    twin = ref[:8] + ("0" if ref[8] != "0" else "1") + ref[9:]
    (tmp_path / twin[:2] / twin[2:]).write_text("twin")
    with pytest.raises(ArtifactNotFound, match="2 refs start so"):
        store.resolve(ref[:8])
    assert store.resolve(ref[:9]) == ref
