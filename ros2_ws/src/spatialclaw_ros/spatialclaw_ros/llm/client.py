"""ChatModel: one client for every model conversation (main, planner, vlm) of an OpenAI-compatible endpoint.

Requests run as asyncio tasks on a private event-loop thread, so a cancelled question aborts the
request in flight (the connection is closed) and ``chat()`` returns at once with ``Cancelled``.
Retries (429, 5xx, connection errors, a streamed reply cut off before its ``finish_reason``) wait
``backoff_s * 2**n`` (at most 8 s), or what the endpoint's ``Retry-After`` asks for when that ends
within the role's ``timeout_s`` counted from the call's start (else the call fails at once, saying
so); waits can be cancelled. A timeout is not retried, since a model that used the whole budget once
will likely do it again. A reply longer than ``max_tokens * MAX_CHARS_PER_TOKEN`` characters is refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, TypeVar

import openai

from ..cancel import Cancelled, CancelToken
from ..config import ModelConfig, RoleConfig

ROLES = ("main", "planner", "vlm")
ROLE_HEADER = "X-SpatialClaw-Role"  # names the conversation on every request (logs, routing, scripted server)
ERROR_KINDS = ("unreachable", "timeout", "http", "garbage", "empty", "incomplete")
MAX_BACKOFF_S = 8.0
MAX_CHARS_PER_TOKEN = 64  # a reply longer than max_tokens times this is not one the request asked for
CANCEL_POLL_S = 0.05
SNIPPET_CHARS = 200

T = TypeVar("T")


@dataclass
class Usage:
    """Token counts reported by the endpoint (zeros when it reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass
class ToolCall:
    """One function call a reply asks for (OpenAI function calling): its id, function name and JSON arguments."""

    id: str
    name: str
    arguments: str


@dataclass
class ChatReply:
    """A model's answer; ``latency_s`` covers the whole call including retries, ``attempts`` counts requests;
    ``tool_calls`` are the function calls it asks for when the request offered ``tools``."""

    text: str
    usage: Usage
    latency_s: float
    model: str
    finish_reason: str
    attempts: int
    tool_calls: list[ToolCall] = field(default_factory=list)


class ModelError(RuntimeError):
    """The endpoint could not give a usable answer; ``kind`` is one of ERROR_KINDS, ``status`` the HTTP status
    for kind "http"; the message names the endpoint and what happened."""

    def __init__(self, kind: str, endpoint: str, message: str, status: int | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ModelError kind '{kind}' (expected one of {', '.join(ERROR_KINDS)})")
        super().__init__(message)
        self.kind = kind
        self.endpoint = endpoint
        self.status = status


@dataclass
class _Failure(Exception):
    """One attempt's failure, turned into a ModelError once it is final (retries named in the message)."""

    kind: str
    what: str  # follows "model endpoint <url> ", e.g. "answered HTTP 500"
    detail: str = ""  # follows ": ", e.g. the start of the body
    status: int | None = None
    retryable: bool = False
    retry_after_s: float | None = None  # what the endpoint asked to wait (Retry-After), if it did


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text[:SNIPPET_CHARS] if text else "(empty body)"


def _connection_reason(error: BaseException) -> str:
    """A short cause for a connection failure, e.g. "connection refused", from the exception chain."""
    seen = set()
    cause: BaseException | None = error
    innermost = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        innermost = cause
        cause = cause.__cause__ or cause.__context__
    text = str(innermost).lower()
    for known in ("connection refused", "name or service not known", "network is unreachable",
                  "no route to host", "connection reset", "server disconnected"):
        if known in text:
            return known
    return text or type(innermost).__name__


def _count(value) -> int:
    """A reported token count; 0 when it is missing or not a finite, non-negative number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if math.isfinite(number) and number >= 0 else 0


def _usage_of(usage) -> Usage:
    if usage is None:
        return Usage()
    return Usage(_count(getattr(usage, "prompt_tokens", 0)), _count(getattr(usage, "completion_tokens", 0)),
                 _count(getattr(usage, "total_tokens", 0)))


def _retry_after_s(headers) -> float | None:
    """Seconds the endpoint asks to wait (``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date)."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):
                continue
        if not math.isnan(seconds):
            return max(seconds, 0.0)  # infinite: passes any timeout, so the call fails saying so
    return None


class _EventLoopThread:
    """An asyncio loop running forever on a daemon thread; coroutines are submitted from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="chat-model-loop", daemon=True)
        self._thread.start()

    def submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Cancel what is still running, finalise async generators, then stop and close the loop."""
        self.submit(self._drain()).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    @staticmethod
    async def _drain() -> None:
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()


class ChatModel:
    """Chat completions for the roles "main", "planner" and "vlm"; thread-safe, a context manager."""

    def __init__(self, config: ModelConfig, *, backoff_s: float = 0.5) -> None:
        self.config = config
        self.endpoint = config.base_url
        self._backoff_s = backoff_s
        self._runner = _EventLoopThread()
        # Retries are ours (below), so they can count attempts, honour cancellation and skip timeouts.
        self._client = openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key or "no-key",
                                          max_retries=0)
        self._default_model: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "ChatModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and stop the loop thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._runner.submit(self._client.close()).result()
        self._runner.stop()

    def role_config(self, role: str) -> RoleConfig:
        """The RoleConfig of ``role``; a ValueError names the valid roles."""
        if role not in ROLES:
            raise ValueError(f"unknown model role '{role}' (expected one of {', '.join(ROLES)})")
        return getattr(self.config, role)

    def chat(self, role: str, messages: list[dict], *, cancel: CancelToken | None = None,
             tools: list[dict] | None = None) -> ChatReply:
        """Send ``messages`` as ``role`` (offering ``tools``, OpenAI function definitions, if given); raises
        ModelError when no usable answer comes, Cancelled on cancel."""
        settings = self.role_config(role)
        model = settings.model or self.config.model or self._endpoint_default_model(cancel)
        request = dict(model=model, messages=messages, temperature=settings.temperature,
                       max_tokens=settings.max_tokens, timeout=settings.timeout_s, extra_headers={ROLE_HEADER: role})
        if tools:
            request["tools"] = tools
        started = time.monotonic()
        (text, finish_reason, reply_model, usage, calls), attempts = self._run(
            self._attempts(lambda: self._chat_once(request, settings.max_tokens * MAX_CHARS_PER_TOKEN),
                           settings.timeout_s, self.config.max_retries), cancel)
        return ChatReply(text=text, usage=usage, latency_s=time.monotonic() - started, model=reply_model,
                         finish_reason=finish_reason, attempts=attempts, tool_calls=calls)

    def ping(self, timeout_s: float = 10.0) -> list[str]:
        """The model ids the endpoint lists (GET /models), asked once; raises ModelError if that fails."""
        models, _ = self._run(self._attempts(lambda: self._list_models(timeout_s), timeout_s, max_retries=0), None)
        return models

    def _endpoint_default_model(self, cancel: CancelToken | None) -> str:
        """The first model the endpoint lists, asked once per ChatModel; used when no model is configured."""
        with self._lock:
            if self._default_model:
                return self._default_model
        timeout_s = self.config.main.timeout_s
        models, _ = self._run(self._attempts(lambda: self._list_models(timeout_s), timeout_s,
                                             self.config.max_retries), cancel)
        if not models:
            raise self._final(_Failure("empty", "lists no models; set model.model in the config"), retries=0)
        with self._lock:
            self._default_model = models[0]
        return models[0]

    def _run(self, coroutine, cancel: CancelToken | None):
        """Run ``coroutine`` on the loop thread and wait for it, aborting it when ``cancel`` fires."""
        if self._closed:
            coroutine.close()
            raise RuntimeError("ChatModel is closed")
        if cancel is not None and cancel.cancelled:
            coroutine.close()
            raise Cancelled(cancel.reason)
        future = self._runner.submit(coroutine)
        while True:
            done, _ = concurrent.futures.wait([future], timeout=CANCEL_POLL_S)
            if done:
                return future.result()
            if cancel is not None and cancel.cancelled:
                future.cancel()  # cancels the task: the request in flight is aborted and its connection closed
                raise Cancelled(cancel.reason)

    async def _attempts(self, once: Callable[[], Awaitable[T]], timeout_s: float, max_retries: int) -> tuple[T, int]:
        """Await ``once()`` (each try limited to ``timeout_s``) with backoff between retryable failures;
        returns its result and the number of attempts, or raises the final ModelError."""
        attempts = 0
        started = time.monotonic()
        while True:
            attempts += 1
            try:
                try:
                    return await asyncio.wait_for(once(), timeout_s), attempts
                except asyncio.TimeoutError:
                    raise _timed_out(timeout_s) from None
            except _Failure as failure:
                retries = attempts - 1
                if not failure.retryable or retries >= max_retries:
                    raise self._final(failure, retries) from None
                wait_s = failure.retry_after_s
                if wait_s is None:
                    wait_s = min(self._backoff_s * 2 ** retries, MAX_BACKOFF_S)
                elif time.monotonic() - started + wait_s > timeout_s:
                    raise self._final(replace(failure, what=f"{failure.what} asking to retry after {wait_s:.1f} s "
                                                            f"(Retry-After), past the call's timeout of {timeout_s:.1f} s"),
                                      retries) from None
                await asyncio.sleep(wait_s)

    async def _list_models(self, timeout_s: float) -> list[str]:
        """One GET /models: the listed ids."""
        try:
            page = await self._client.models.list(timeout=timeout_s)
        except openai.APIError as error:
            raise self._classify(error, timeout_s) from error
        return [model.id for model in page.data]

    async def _chat_once(self, request: dict, max_chars: int) -> tuple[str, str, str, Usage, list[ToolCall]]:
        """One chat request, streamed or not: (text, finish_reason, model, usage, tool calls); overlong text, or a
        reply with neither text nor tool calls, is a failure."""
        text, finish_reason, model, usage, calls = await (
            self._stream_once(request, max_chars) if self.config.stream else self._request_once(request))
        if len(text) > max_chars:
            raise _too_long(max_chars, request["max_tokens"])
        if not text.strip() and not calls:
            raise _Failure("empty", "answered with an empty message", f"finish_reason={finish_reason or 'none'}")
        return text, finish_reason, model, usage, calls

    async def _request_once(self, request: dict) -> tuple[str, str, str, Usage, list[ToolCall]]:
        """One non-streaming request: (text, finish_reason, model, usage, tool calls)."""
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**request)
        except openai.APIError as error:
            raise self._classify(error, request["timeout"]) from error
        try:
            completion = raw.parse()
            choice = completion.choices[0]
            text = choice.message.content or ""
            calls = [ToolCall(call.id, call.function.name, call.function.arguments or "")
                     for call in choice.message.tool_calls or []]
        except Exception:  # anything unparsable or shaped wrong is not a chat completion
            raise _garbage(raw.http_response.text) from None
        return (text, choice.finish_reason or "", completion.model or request["model"], _usage_of(completion.usage),
                calls)

    async def _stream_once(self, request: dict, max_chars: int) -> tuple[str, str, str, Usage, list[ToolCall]]:
        """One streaming request; deltas (text and tool-call pieces, by index) are accumulated and usage taken
        from the final chunk. A stream that ends or breaks before a chunk carried ``finish_reason`` is a cut-off
        reply (kind "incomplete", retried)."""
        pieces: list[str] = []
        received = 0
        calls: dict[int, ToolCall] = {}
        finish_reason, model, usage = "", request["model"], Usage()
        try:
            stream = await self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True})
        except openai.APIError as error:
            raise self._classify(error, request["timeout"]) from error
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.choices is None:
                        raise _garbage(repr(chunk.to_dict()))
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = _usage_of(chunk.usage)
                    for choice in chunk.choices:
                        piece = (choice.delta.content or "") if choice.delta else ""
                        received += len(piece)
                        if received > max_chars:
                            raise _too_long(max_chars, request["max_tokens"])
                        pieces.append(piece)
                        for delta in (choice.delta.tool_calls if choice.delta else None) or []:
                            call = calls.setdefault(delta.index, ToolCall("", "", ""))
                            call.id = delta.id or call.id
                            if delta.function is not None:
                                call.name += delta.function.name or ""
                                call.arguments += delta.function.arguments or ""
                        finish_reason = choice.finish_reason or finish_reason
        except openai.APITimeoutError as error:
            raise self._classify(error, request["timeout"]) from error
        except openai.APIConnectionError as error:  # the connection broke in the middle of the reply
            raise _cut_off(received, _connection_reason(error)) from error
        except openai.APIError as error:
            raise self._classify(error, request["timeout"]) from error
        except ValueError as error:  # an event that is not JSON
            raise _garbage(str(error)) from error
        if not finish_reason:
            raise _cut_off(received, "the stream ended")
        return "".join(pieces), finish_reason, model, usage, [calls[index] for index in sorted(calls)]

    def _classify(self, error: openai.APIError, timeout_s: float) -> _Failure:
        """The failure an openai error stands for; 429, 5xx and connection errors are retryable."""
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            return _Failure("http", f"answered HTTP {status}", _snippet(error.response.text), status=status,
                            retryable=status == 429 or status >= 500,
                            retry_after_s=_retry_after_s(error.response.headers))
        if isinstance(error, openai.APITimeoutError):
            return _timed_out(timeout_s)
        if isinstance(error, openai.APIConnectionError):
            return _Failure("unreachable", f"is unreachable ({_connection_reason(error)})", retryable=True)
        return _garbage(f"{type(error).__name__}: {error}")

    def _final(self, failure: _Failure, retries: int) -> ModelError:
        """The ModelError for ``failure``, naming the endpoint and how many retries were spent."""
        message = f"model endpoint {self.endpoint} {failure.what}"
        if retries:
            message += f" after {retries} retries"
        if failure.detail:
            message += f": {failure.detail}"
        return ModelError(failure.kind, self.endpoint, message, status=failure.status)


def _timed_out(timeout_s: float) -> _Failure:
    return _Failure("timeout", f"timed out after {timeout_s:.1f} s")


def _cut_off(received: int, reason: str) -> _Failure:
    return _Failure("incomplete", f"cut its streamed reply off after {received} characters, before a finish_reason",
                    reason, retryable=True)


def _too_long(max_chars: int, max_tokens: int) -> _Failure:
    return _Failure("garbage", f"sent a reply longer than {max_chars} characters, far beyond max_tokens={max_tokens}")


def _garbage(text: str) -> _Failure:
    return _Failure("garbage", "answered something that is not a chat completion", _snippet(text))
