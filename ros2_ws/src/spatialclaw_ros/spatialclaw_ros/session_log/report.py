"""A self-contained ``report.html`` for one session, rendered from its trace and images.

Everything the trace holds is html-escaped; images are embedded as data URLs (large ones
downscaled to JPEG so the report stays small) while the page's byte budget lasts, then named only.
A page that would still pass its budget becomes a short one: the outcome and a pointer to the trace.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from string import Template

from PIL import Image

from .log import DROPPED_KIND, REPORT_FILE, read_trace, write_atomically

TEMPLATE_FILE = Path(__file__).with_name("report_template.html")
EMBED_PNG_MAX_BYTES = 300_000  # larger images are embedded as downscaled JPEG
EMBED_MAX_SIDE = 768
REPORT_MAX_BYTES = 64 * 1024 * 1024  # write_report's budget when the caller gives none
EMBED_SHARE = 0.8  # of the page's byte budget, at most this much goes to embedded images


def _embed(path: Path) -> str:
    """A data URL for the image at ``path``."""
    data = path.read_bytes()
    if len(data) <= EMBED_PNG_MAX_BYTES:
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((EMBED_MAX_SIDE, EMBED_MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _pre(text: str, css: str = "") -> str:
    return f'<pre class="{css}">{_esc(text)}</pre>' if text else ""


class _Renderer:
    """Turns trace events into HTML sections, grouped by step."""

    def __init__(self, directory: Path, embed_budget: int) -> None:
        self.directory = directory
        self.embed_budget = embed_budget  # bytes of data URLs still allowed

    def figure(self, image: dict) -> str:
        """An embedded image with its caption (a note when the file is missing, unreadable or over the budget)."""
        path = self.directory / image["file"]
        try:
            url = _embed(path) if path.is_file() else ""
        except (OSError, ValueError) as error:
            return f"<p class=\"meta\">(image {_esc(image['file'])} is unreadable: {_esc(error)})</p>"
        if not url:
            return f"<p class=\"meta\">(image {_esc(image['file'])} is missing)</p>"
        if len(url) > self.embed_budget:
            return f"<p class=\"meta\">(image {_esc(image['file'])} left out: the report's size budget is spent)</p>"
        self.embed_budget -= len(url)
        return (f'<figure><img src="{url}" alt="{_esc(image.get("label", ""))}">'
                f'<figcaption>{_esc(image.get("label", ""))}</figcaption></figure>')

    def question(self, event: dict) -> str:
        """The question, its options, the frame metadata and the key frames."""
        parts = [f"<h2>Question</h2><p><strong>{_esc(event['question'])}</strong></p>"]
        if event.get("choices"):
            parts.append("<ul>" + "".join(f"<li>{_esc(choice)}</li>" for choice in event["choices"]) + "</ul>")
        parts.append(_pre(json.dumps(event.get("metadata", {}), indent=1)))
        if event.get("key_frames"):
            parts.append("<h2>Key frames</h2>" + "".join(self.figure(image) for image in event["key_frames"]))
        return "".join(parts)

    def cell(self, event: dict) -> str:
        """A cell's status, code, output, error, variables, restart and shown images."""
        status = event["status"]
        parts = [f'<p class="meta">cell <span class="status-{_esc(status)}">{_esc(status)}</span> '
                 f"in {event.get('duration_s', 0.0):.2f} s</p>",
                 _pre(event["code"], "code")]
        output = event.get("stdout", "") + (("\n[stderr]\n" + event["stderr"]) if event.get("stderr") else "")
        parts.append(_pre(output))
        parts.append(_pre(event.get("error", ""), "error"))
        variables = event.get("variables") or {}
        lines = [f"{item['name']}: {item['type']} {item['summary']}" for key in ("new", "changed")
                 for item in variables.get(key, [])]
        if variables.get("deleted"):
            lines.append("deleted: " + ", ".join(variables["deleted"]))
        if lines:
            parts.append("<p class=\"meta\">variables</p>" + _pre("\n".join(lines)))
        if event.get("restart"):
            parts.append(_pre("kernel restarted: " + json.dumps(event["restart"]), "error"))
        parts.extend(self.figure(image) for image in event.get("images", []))
        return "".join(parts)

    def step_event(self, event: dict) -> str:
        """HTML for an event that belongs to a step ("" for events the report leaves out)."""
        kind = event["kind"]
        if kind == "cell":
            reasoning = f"<p>{_esc(event['reasoning'])}</p>" if event.get("reasoning") else ""
            return reasoning + self.cell(event)
        if kind == "malformed":
            problem = f"<p class=\"status-error\">malformed reply: {_esc(event['problem'])}</p>"
            return problem + _pre(event.get("text", ""))
        if kind == "vlm":
            outcome = event.get("result") if not event.get("error") else "error: " + event["error"]
            return (f"<p class=\"meta\">{_esc(event.get('service'))}: {_esc(event.get('question', ''))} "
                    f"&rarr; {_esc(outcome)}</p>" + "".join(self.figure(image) for image in event.get("images", [])))
        if kind == "answer_check":
            verdict = "accepted" if event["accepted"] else "refused: " + event.get("reason", "")
            call = f"ReturnAnswer({event.get('value')!r}, unit={event.get('unit')!r})"
            return f"<p class=\"meta\">{_esc(call)} {_esc(verdict)}</p>"
        if kind == DROPPED_KIND:
            return f"<p class=\"status-error\">{_esc(dropped_note(event))}</p>"
        return ""

    def result(self, event: dict) -> str:
        """The final result as a table."""
        rows = "".join(f"<tr><th>{_esc(key)}</th><td>{_esc(value)}</td></tr>" for key, value in event.items()
                       if key not in ("kind", "t"))
        return f"<h2>Result</h2><table>{rows}</table>"

    @staticmethod
    def summary(event: dict) -> str:
        """One line under the title: the answer, or why there is none."""
        if event.get("status") == "answered":
            confidence = " (low confidence)" if event.get("low_confidence") else ""
            text = f"Answer: {event.get('answer')}{confidence} after {event.get('steps')} steps"
        else:
            text = f"{event.get('status')} ({event.get('error_code')}): {event.get('error_message')}"
        return f'<p class="status-{_esc(event.get("status"))}"><strong>{_esc(text)}</strong></p>'

    def render(self, events: list[dict]) -> tuple[str, str]:
        """(title, body) for the events of one session; within a step the cell comes before its host calls."""
        title = "SpatialClaw session"
        head: list[str] = []
        body: list[str] = []
        steps: dict[int, list[str]] = {}
        tail: list[str] = []
        for event in events:
            kind = event["kind"]
            if kind == "question":
                title = f"SpatialClaw: {event['question']}"
                body.append(self.question(event))
            elif kind == "plan":
                body.append("<h2>Plan</h2>" + _pre(event.get("text", "")))
            elif kind == "final_answer":
                verdict = "accepted" if event.get("accepted") else "refused: " + event.get("reason", "")
                tail.append("<h2>Final answer call</h2>" + _pre(event.get("text", "")) + f"<p>{_esc(verdict)}</p>")
            elif kind == DROPPED_KIND and "summary" in event:
                tail.append(f"<h2>Not logged</h2><p class=\"status-error\">{_esc(dropped_note(event))}</p>")
            elif kind == "error":
                failure = f"{event.get('code')}: {event.get('message')}"
                tail.append(f"<h2>Error</h2><p class=\"status-failed\">{_esc(failure)}</p>")
            elif kind == "result":
                head.append(self.summary(event))
                tail.append(self.result(event))
            elif "step" in event:
                html_text = self.step_event(event)
                if html_text:
                    entries = steps.setdefault(int(event["step"]), [])
                    if kind in ("cell", "malformed"):  # logged after the host calls it made
                        entries.insert(0, html_text)
                    else:
                        entries.append(html_text)
        for step in sorted(steps):
            body.append(f"<h2>Step {step}</h2>" + "".join(steps[step]))
        return title, "\n".join([f"<h1>{_esc(title)}</h1>", *head, *body, *tail])


def dropped_note(event: dict) -> str:
    """One line for a ``dropped`` event: the item it stands for, or the session's summary of dropped items."""
    if "summary" in event:
        return "; ".join(f"{entry['items']} items ({entry['bytes']} bytes) not written: {why}"
                         for why, entry in event["summary"].items())
    return f"a {event.get('dropped_kind')} event of {event.get('bytes')} bytes was not written: {event.get('reason')}"


def render_report(directory: str | Path, max_bytes: int) -> str:
    """The report page for the session ``directory``, at most ``max_bytes`` long in UTF-8 (ValueError when not
    even the short page fits)."""
    directory = Path(directory)
    events = read_trace(directory)
    template = Template(TEMPLATE_FILE.read_text(encoding="utf-8"))
    title, body = _Renderer(directory, int(max_bytes * EMBED_SHARE)).render(events)
    page = template.substitute(title=_esc(title), body=body)
    if len(page.encode("utf-8", "backslashreplace")) <= max_bytes:
        return page
    result = next((event for event in reversed(events) if event["kind"] == "result"), {})
    short = (f"<h1>{_esc(title)}</h1>" + (_Renderer.summary(result) if result else "")
             + f"<p class=\"status-error\">The full report would pass its size budget of {max_bytes} bytes; "
               f"{_esc(REPORT_FILE)} shows only the outcome. The trace (trace.jsonl) holds every event.</p>")
    page = template.substitute(title=_esc(title), body=short)
    if len(page.encode("utf-8", "backslashreplace")) > max_bytes:
        raise ValueError(f"no room for {REPORT_FILE} under the session size cap ({max_bytes} bytes left)")
    return page


def write_report(directory: str | Path, max_bytes: int = REPORT_MAX_BYTES) -> Path:
    """Render ``report.html`` (at most ``max_bytes``) into the session ``directory`` atomically; returns its path."""
    path = Path(directory) / REPORT_FILE
    write_atomically(path, render_report(directory, max_bytes).encode("utf-8", "backslashreplace"))
    return path
