"""An OpenAI-compatible model server for tests: POST /v1/chat/completions with the real
wire format (id, object, created, model, choices[].message, finish_reason, usage), so
the real `openai` client is exercised.

Each test scripts it: `then(...)` queues replies for the next calls, `default` answers
the rest. Replies: a valid insight (`ok`), `slow`, `rate_limited` (429 + Retry-After),
`server_error` (500), `malformed` (a body that is not JSON), `invalid` (JSON that
misses the schema), `not_json` (text content that is not JSON). Every call is recorded
with its arrival time, its messages and the usage billed, so tests can check limits.
Usage is counted like a tokenizer would, about 4 characters per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "test-key-not-secret"


@dataclass(frozen=True)
class Reply:
    kind: str = "ok"
    delay_s: float = 0.0
    retry_after: str | None = None
    insight: dict[str, Any] | None = None


OK = Reply()


def slow(delay_s: float) -> Reply:
    return Reply("ok", delay_s=delay_s)


def rate_limited(retry_after: str | None = "0.05") -> Reply:
    return Reply("rate_limited", retry_after=retry_after)


SERVER_ERROR = Reply("server_error")
MALFORMED = Reply("malformed")
INVALID = Reply("invalid")
NOT_JSON = Reply("not_json")


@dataclass
class Call:
    at: float  # time.time() on arrival
    model: str
    messages: list[dict[str, Any]]
    status: int  # 0 while the reply is pending
    prompt_tokens: int = 0
    completion_tokens: int = 0
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def data(self) -> dict[str, Any]:
        """The JSON document the analyzer put in the user message."""
        text = str(self.messages[-1]["content"])
        parsed: dict[str, Any] = json.loads(text.split("DATA (JSON):\n", 1)[1])
        return parsed


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def insight_for(data: dict[str, Any]) -> dict[str, Any]:
    what = data.get("sensor") or data.get("device_id") or "the device"
    return {
        "diagnosis": f"Model diagnosis for {what}: the reading is outside its usual range.",
        "likely_causes": ["a worn part", "a failing sensor"],
        "actions": ["inspect the equipment", "check the sensor"],
        "urgency": "warning",
        "confidence": 0.8,
    }


class OpenAIServer:
    def __init__(self) -> None:
        self.default = OK
        #: Number every answer ("... (answer 7)"), as a real model never answers twice
        #: in the same words; off, equal questions get equal answers.
        self.numbered = False
        self.calls: list[Call] = []
        self._script: deque[Reply] = deque()
        self._arrived = asyncio.Condition()
        self._stopping = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def then(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def ok_calls(self) -> list[Call]:
        return [c for c in self.calls if c.status == 200]

    async def wait_calls(self, count: int, timeout_s: float = 10.0) -> list[Call]:
        """Wait until at least `count` calls have arrived."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.calls) >= count), timeout_s
            )
        return self.calls

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._stopping.set()  # slow replies still pending end now
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._arrived:
            self._arrived.notify_all()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        body = await request.json()
        reply = self._script.popleft() if self._script else self.default
        messages = body.get("messages", [])
        # Recorded on arrival (status 0 while in progress): a hanging call is a call.
        call = Call(arrived, body.get("model", ""), messages, 0, body=body)
        await self._record(call)
        if reply.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), reply.delay_s)
        if reply.kind == "rate_limited":
            call.status = 429
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            return _error(429, "rate_limit_exceeded", "Rate limit reached.", headers)
        if reply.kind == "server_error":
            call.status = 500
            return _error(500, "server_error", "The server had an error.")
        call.prompt_tokens = sum(tokens(str(m.get("content", ""))) for m in messages)
        call.status = 200
        if reply.kind == "malformed":
            truncated = '{"id": "chatcmpl-x", "choices": ['
            return web.Response(text=truncated, content_type="application/json")
        content = self._content(reply, call)
        call.completion_tokens = tokens(content)
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(arrived),
                "model": call.model,
                "system_fingerprint": "fp_vigil_test",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": call.prompt_tokens,
                    "completion_tokens": call.completion_tokens,
                    "total_tokens": call.total_tokens,
                },
            }
        )

    def _content(self, reply: Reply, call: Call) -> str:
        if reply.kind == "not_json":
            return "The pump is probably failing."
        if reply.kind == "invalid":
            return json.dumps({"diagnosis": "missing the rest", "urgency": "extreme"})
        try:
            data = call.data
        except (IndexError, KeyError, ValueError):
            data = {}
        insight = reply.insight or insight_for(data)
        if self.numbered:
            insight = {**insight, "diagnosis": f"{insight['diagnosis']} (answer {len(self.calls)})"}
        return json.dumps(insight)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": code, "param": None, "code": code}},
        status=status,
        headers=headers,
    )


@asynccontextmanager
async def openai_server() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def model_env(server: OpenAIServer, **extra: str) -> dict[str, str]:
    """Analyzer environment that points the model at `server`."""
    return {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": server.base_url,
        "VIGIL_LLM_MODEL": "vigil-test-model",
        **extra,
    }
