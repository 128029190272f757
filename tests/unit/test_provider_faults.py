"""What comes back from a provider, through litellm's real HTTP path to a local fake
OpenAI-compatible server: a transient fault is retried, a malformed or refused reply and a
missing key fail at once with the reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from temporalio.exceptions import ApplicationError

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from p2engine.activities.llm import (
    RETRY_AFTER_MAX,
    complete_text,
    credentials_problem,
    missing_keys,
)

MESSAGES = [{"role": "user", "content": "hi"}]
REPLY: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "fake",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class FakeProvider(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, REPLY)
    headers_out: ClassVar[dict[str, str]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProvider]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{server.server_address[1]}/v1")
    try:
        yield FakeProvider
    finally:
        FakeProvider.answer = (200, REPLY)
        FakeProvider.headers_out = {}
        server.shutdown()


async def test_a_reply_comes_back_with_its_usage(provider: type[FakeProvider]) -> None:
    text, usage = await complete_text("openai/fake", MESSAGES)
    assert (text, usage.prompt_tokens, usage.completion_tokens) == ("hello", 3, 1)


async def test_a_reply_with_no_choices_fails_at_once(provider: type[FakeProvider]) -> None:
    provider.answer = (200, {**REPLY, "choices": []})
    with pytest.raises(ApplicationError) as caught:
        await complete_text("openai/fake", MESSAGES)
    assert (caught.value.type, caught.value.non_retryable) == ("MalformedReply", True)
    assert "no choices" in caught.value.message


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, "RateLimitError", True),
        (503, "ServiceUnavailableError", True),
        (500, "InternalServerError", True),
        (401, "AuthenticationError", False),
        (400, "BadRequestError", False),
    ],
)
async def test_an_http_fault_is_retried_only_when_it_is_transient(
    provider: type[FakeProvider], status: int, kind: str, retryable: bool
) -> None:
    provider.answer = (status, {"error": {"message": "nope", "type": "x", "code": None}})
    with pytest.raises(ApplicationError) as caught:
        await complete_text("openai/fake", MESSAGES)
    assert (caught.value.type, caught.value.non_retryable) == (kind, not retryable)


@pytest.mark.parametrize(
    ("header", "delay"),
    [("7", timedelta(seconds=7)), ("0.5", timedelta(seconds=0.5)), ("86400", RETRY_AFTER_MAX),
     ("soon", None), (None, None)],
)  # fmt: skip
async def test_a_429_waits_as_long_as_the_provider_asked(
    provider: type[FakeProvider], header: str | None, delay: timedelta | None
) -> None:
    provider.answer = (429, {"error": {"message": "slow down", "type": "x", "code": None}})
    provider.headers_out = {"Retry-After": header} if header is not None else {}
    with pytest.raises(ApplicationError) as caught:
        await complete_text("openai/fake", MESSAGES)
    assert (caught.value.type, caught.value.non_retryable) == ("RateLimitError", False)
    assert caught.value.next_retry_delay == delay


async def test_a_missing_key_fails_at_once_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert missing_keys("openai/gpt-4o-mini") == ["OPENAI_API_KEY"]
    assert credentials_problem("gpt-4o-mini") == "OPENAI_API_KEY is not set: gpt-4o-mini needs it"
    with pytest.raises(ApplicationError) as caught:
        await complete_text("gpt-4o-mini", MESSAGES)
    assert (caught.value.type, caught.value.non_retryable) == ("MissingCredentials", True)
    assert "OPENAI_API_KEY is not set" in caught.value.message


def test_a_provider_without_a_key_or_with_one_set_lacks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    assert credentials_problem("openai/gpt-4o-mini") is None
    assert missing_keys("scripted/default") == []
    assert missing_keys("ollama/llama3") == []  # only an API base, which has a default
