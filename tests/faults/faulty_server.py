"""A real OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on cue.

Each role ("main", "planner", "vlm", from the ``X-SpatialClaw-Role`` header) plays its own list of
actions: a normal reply (streamed when the request asks for it), a streamed reply cut off after some
characters (the connection closed, with or without chunked framing), an HTTP status with headers
(429 with Retry-After), or a raw body sent as-is (non-finite numbers, huge content).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from spatialclaw_ros.llm.client import ROLE_HEADER

PIECE_CHARS = 16


@dataclass(frozen=True)
class Reply:
    """A well-formed reply: JSON, or SSE chunks ending with finish_reason, usage and [DONE]."""

    text: str


@dataclass(frozen=True)
class CutStream:
    """A streamed reply of which only the first ``after_chars`` characters are sent before the connection closes;
    ``chunked`` frames the body with chunked transfer encoding and leaves out its terminating chunk."""

    text: str
    after_chars: int
    chunked: bool = False


@dataclass(frozen=True)
class Status:
    """An HTTP error status with extra headers (e.g. ``{"Retry-After": "2"}``) and an OpenAI-style error body."""

    status: int
    headers: dict = field(default_factory=dict)
    message: str = "scripted failure"


@dataclass(frozen=True)
class Raw:
    """``body`` sent as a 200 application/json reply, byte for byte."""

    body: bytes


@dataclass
class Received:
    """A request the server got: role, parsed body and when (``at``: time.monotonic, ``wall``: time.time)."""

    role: str
    body: dict
    at: float
    wall: float


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up on purpose (it refused a reply) is no server error worth a traceback."""

    def handle_error(self, request, client_address) -> None:
        return


class FaultyModelServer:
    """Serves ``script`` (role -> list of actions) on a free port; a context manager."""

    def __init__(self, script: dict[str, list]) -> None:
        self._script = {role: list(actions) for role, actions in script.items()}
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def __enter__(self) -> "FaultyModelServer":
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def for_role(self, role: str) -> list[Received]:
        """The requests received for ``role``, in order."""
        with self._lock:
            return [request for request in self.received if request.role == role]

    def next_action(self, role: str, body: dict):
        with self._lock:
            self.received.append(Received(role, body, time.monotonic(), time.time()))
            actions = self._script.get(role) or []
            return actions.pop(0) if actions else Status(500, message=f"script for role {role} is exhausted")


def _chunks(model: str, text: str) -> list[bytes]:
    """The SSE events of a whole streamed reply."""
    base = {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": text[i:i + PIECE_CHARS]}, "finish_reason": None}]}
               for i in range(0, len(text), PIECE_CHARS)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    return [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]


def _handler(server: FaultyModelServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:
            return

        def do_GET(self) -> None:
            self._json(200, {"object": "list", "data": [{"id": "faulty-model", "object": "model", "created": 0,
                                                         "owned_by": "tests"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            action = server.next_action(self.headers.get(ROLE_HEADER) or "main", body)
            model = body.get("model") or "faulty-model"
            if isinstance(action, Status):
                self._json(action.status, {"error": {"message": action.message, "type": "faulty", "code": action.status}},
                           action.headers)
            elif isinstance(action, Raw):
                self._send(200, action.body, "application/json")
            elif isinstance(action, CutStream):
                self._cut_stream(model, action)
            elif body.get("stream"):
                self._stream(b"".join(_chunks(model, action.text)))
            else:
                self._json(200, {"id": "chatcmpl-faulty", "object": "chat.completion", "created": int(time.time()),
                                 "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                              "message": {"role": "assistant", "content": action.text}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        def _cut_stream(self, model: str, action: CutStream) -> None:
            whole = _chunks(model, action.text)
            sent, pieces = 0, []
            for event in whole[:-3]:  # never the finish_reason chunk, the usage chunk or [DONE]
                content = json.loads(event[6:])["choices"][0]["delta"].get("content", "")
                if sent + len(content) > action.after_chars:
                    break
                pieces.append(event)
                sent += len(content)
            data = b"".join(pieces)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            if action.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")  # no terminating 0-chunk
            else:
                self.end_headers()  # neither Content-Length nor chunked: the body ends when the connection closes
                self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True

        def _stream(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
