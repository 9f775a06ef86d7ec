"""A real local HTTP server that speaks the OpenAI chat API and answers from a script.

Used by the tests, the demo and the ROS tests in place of a model: each role ("main", "planner",
"vlm", taken from the ``X-SpatialClaw-Role`` header) replays its own list of turns, or a callable
decides each turn. Run ``python -m spatialclaw_ros.llm.scripted_server --script turns.yaml``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import yaml

from .client import ROLE_HEADER
from .messages import image_of_url, image_urls, message_text

DEFAULT_MODEL = "scripted-model"
IMAGE_TOKENS = 256  # prompt tokens counted per image part
STREAM_PIECE_CHARS = 16  # characters per streamed delta


@dataclass(frozen=True)
class Turn:
    """One scripted answer: reply ``text`` (and ``tool_calls``: mappings with ``name``, ``arguments`` as a dict
    or JSON string, optional ``id``), or HTTP ``status`` with ``text`` as the error message, or a raw ``body``
    sent as-is; after waiting ``delay_s`` seconds."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    body: bytes | None = None
    tool_calls: tuple[dict, ...] = ()


@dataclass
class ScriptedRequest:
    """One chat request the server received."""

    role: str
    body: dict
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict]:
        """The request's chat messages."""
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict]:
        """The function definitions the request offered (OpenAI ``tools``)."""
        return list(self.body.get("tools") or [])

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed (SSE) reply."""
        return bool(self.body.get("stream"))

    def text(self) -> str:
        """All text of all messages, joined by newlines."""
        return "\n".join(message_text(message) for message in self.messages)

    def image_count(self) -> int:
        """How many image parts the messages carry."""
        return len(image_urls(self.messages))

    def images(self) -> list[bytes]:
        """The encoded bytes (PNG or JPEG) of every image part, in order."""
        return [image_of_url(url) for url in image_urls(self.messages)]


Script = Union[Mapping[str, Sequence[Union[Turn, str]]], Callable[[ScriptedRequest], Union[Turn, str]]]


def count_tokens(text: str) -> int:
    """The scripted server's token count: whitespace-separated words."""
    return len(text.split())


def turn_from_yaml(item) -> Turn:
    """A Turn from a YAML list item: a string, or a mapping with keys of Turn."""
    if isinstance(item, str):
        return Turn(text=item)
    if not isinstance(item, dict):
        raise ValueError(f"a scripted turn must be a string or a mapping, got {item!r}")
    unknown = set(item) - {"text", "status", "delay_s", "body", "tool_calls"}
    if unknown:
        raise ValueError(f"unknown turn keys {sorted(unknown)} (known: text, status, delay_s, body, tool_calls)")
    body = item.get("body")
    return Turn(
        text=str(item.get("text", "")),
        status=int(item.get("status", 200)),
        delay_s=float(item.get("delay_s", 0.0)),
        body=body.encode("utf-8") if isinstance(body, str) else body,
        tool_calls=tuple(item.get("tool_calls") or ()),
    )


def load_script(path: str | Path) -> dict[str, list[Turn]]:
    """Read a YAML script: role -> list of strings or turn mappings."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a script must map roles to lists of turns")
    script = {}
    for role, turns in data.items():
        if not isinstance(turns, list):
            raise ValueError(f"{path}: turns of role '{role}' must be a list")
        script[str(role)] = [turn_from_yaml(item) for item in turns]
    return script


class _ScriptError(Exception):
    """The script cannot answer a request; sent back as HTTP 500."""


class ScriptedModelServer:
    """An OpenAI-compatible server on 127.0.0.1 answering from ``script``; a context manager."""

    def __init__(self, script: Script, port: int = 0, host: str = "127.0.0.1") -> None:
        if callable(script):
            self._decide = script
            self._turns = None
        else:
            self._decide = None
            self._turns = {role: [t if isinstance(t, Turn) else Turn(text=t) for t in turns]
                           for role, turns in script.items()}
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[ScriptedRequest] = []
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-model-server", daemon=True)
        self._thread.start()

    def __enter__(self) -> "ScriptedModelServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; delayed answers still pending are dropped at once."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def requests_for(self, role: str) -> list[ScriptedRequest]:
        """The requests received for ``role``, in order."""
        with self._lock:
            return [request for request in self.requests if request.role == role]

    def _record_and_pick(self, request: ScriptedRequest) -> Turn:
        """Remember ``request`` and return the turn that answers it."""
        with self._lock:
            self.requests.append(request)
            if self._decide is None:
                turns = self._turns.get(request.role, [])
                used = self._used.get(request.role, 0)
                if used >= len(turns):
                    raise _ScriptError(f"script for role '{request.role}' exhausted after {len(turns)} turns")
                self._used[request.role] = used + 1
                return turns[used]
        try:
            turn = self._decide(request)
        except Exception as error:  # a broken test script must show up in the reply, not hang the client
            raise _ScriptError(f"script callable raised {type(error).__name__}: {error}") from error
        return turn if isinstance(turn, Turn) else Turn(text=str(turn))


def _completion_id() -> str:
    return f"chatcmpl-scripted-{time.monotonic_ns()}"


def _tool_calls(turn: Turn) -> list[dict]:
    """The turn's function calls in the OpenAI message form (ids made up where the script gives none)."""
    calls = []
    for number, call in enumerate(turn.tool_calls):
        arguments = call.get("arguments", {})
        calls.append({"id": str(call.get("id") or f"call_{number}_{time.monotonic_ns()}"), "type": "function",
                      "function": {"name": str(call["name"]),
                                   "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
    return calls


def _usage(request: ScriptedRequest, text: str) -> dict:
    prompt = count_tokens(request.text()) + IMAGE_TOKENS * request.image_count()
    completion = count_tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _make_handler(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``server``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args) -> None:  # keep test output clean
            return

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                self._send_error(404, f"no such path {self.path}")
                return
            models = {"object": "list",
                      "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 0, "owned_by": "spatialclaw"}]}
            self._send_json(200, models)

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_error(404, f"no such path {self.path}")
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                self._send_error(400, "request body is not JSON")
                return
            request = ScriptedRequest(role=self.headers.get(ROLE_HEADER) or "main", body=body,
                                      headers={k.lower(): v for k, v in self.headers.items()})
            try:
                turn = server._record_and_pick(request)
            except _ScriptError as error:
                self._send_error(500, str(error))
                return
            if turn.delay_s > 0 and server._closing.wait(turn.delay_s):
                self.close_connection = True
                return
            if turn.body is not None:
                self._send(turn.status, turn.body, "application/json")
            elif turn.status != 200:
                self._send_error(turn.status, turn.text or f"scripted HTTP {turn.status}")
            elif request.stream:
                self._send_stream(request, turn.text, _tool_calls(turn))
            else:
                calls = _tool_calls(turn)
                message = {"role": "assistant", "content": turn.text or (None if calls else "")}
                if calls:
                    message["tool_calls"] = calls
                self._send_json(200, {
                    "id": _completion_id(), "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model") or DEFAULT_MODEL,
                    "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop", "message": message}],
                    "usage": _usage(request, turn.text),
                })

        def _send_stream(self, request: ScriptedRequest, text: str, calls: list[dict]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.close_connection = True
            base = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": request.body.get("model") or DEFAULT_MODEL}
            pieces = [text[i:i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)]
            chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]}]
            chunks += [{**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                       for piece in pieces]
            for index, call in enumerate(calls):  # a call's head, then its arguments in pieces
                function = call["function"]
                head = {"index": index, "id": call["id"], "type": "function",
                        "function": {"name": function["name"], "arguments": ""}}
                chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}]})
                arguments = function["arguments"]
                chunks += [{**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                    {"index": index, "function": {"arguments": arguments[i:i + STREAM_PIECE_CHARS]}}]}}]}
                    for i in range(0, len(arguments), STREAM_PIECE_CHARS)]
            chunks.append({**base, "choices": [{"index": 0, "delta": {},
                                                "finish_reason": "tool_calls" if calls else "stop"}]})
            if (request.body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**base, "choices": [], "usage": _usage(request, text)})
            try:
                for chunk in chunks:
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading (cancelled)

        def _send_error(self, status: int, message: str) -> None:
            self._send_json(status, {"error": {"message": message, "type": "scripted_error", "code": status}})

        def _send_json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (cancelled or timed out)

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a YAML script until SIGINT/SIGTERM; print "READY <url>" once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", required=True, help="YAML file: role -> list of strings or turn mappings")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ScriptedModelServer(load_script(args.script), port=args.port) as server:
        print(f"READY {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
