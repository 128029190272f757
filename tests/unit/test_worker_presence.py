"""Which pollers count as a standing worker when `p2e run` decides to run one in-process."""

from __future__ import annotations

import os
import socket
import subprocess

from p2engine.runtime.worker import (
    EPHEMERAL_SUFFIX,
    POLLER_FRESH_S,
    _poller_alive,
    worker_identity,
)


def test_a_live_local_worker_counts() -> None:
    assert _poller_alive(f"{os.getpid()}@{socket.gethostname()}", last_seen_s=1)


def test_a_dead_local_worker_does_not_count() -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()
    assert not _poller_alive(f"{exited.pid}@{socket.gethostname()}", last_seen_s=1)


def test_a_worker_started_by_p2e_run_does_not_count() -> None:
    identity = f"{os.getpid()}@{socket.gethostname()}{EPHEMERAL_SUFFIX}"
    assert not _poller_alive(identity, last_seen_s=1)


def test_a_poller_not_seen_for_longer_than_a_long_poll_does_not_count() -> None:
    identity = f"{os.getpid()}@{socket.gethostname()}"
    assert not _poller_alive(identity, last_seen_s=POLLER_FRESH_S + 1)


def test_a_fresh_remote_worker_counts() -> None:
    assert _poller_alive("4242@some-other-host", last_seen_s=5)


def test_a_worker_named_with_its_store_is_found_live_or_dead_by_its_pid() -> None:
    live = worker_identity(ephemeral=False, store_id="0123abcd")
    assert live == f"{os.getpid()}@{socket.gethostname()}#0123abcd"
    assert _poller_alive(live, last_seen_s=1)
    exited = subprocess.Popen(["true"])
    exited.wait()
    assert not _poller_alive(f"{exited.pid}@{socket.gethostname()}#0123abcd", last_seen_s=1)
    assert worker_identity(ephemeral=True, store_id="ab").endswith(f"#ab{EPHEMERAL_SUFFIX}")
