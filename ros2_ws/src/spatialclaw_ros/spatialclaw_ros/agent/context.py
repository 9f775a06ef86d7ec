"""The main conversation's history and how each call's messages are fitted into the context budget.

The newest ``keep_recent_steps`` steps are always sent whole. While the estimate is over budget,
older material shrinks in this order: older step images are thumbnailed, older long outputs are
cut to their first and last lines, older step images are dropped (a note says so), and finally key
frames are thumbnailed. The image count never exceeds ``max_images``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import ContextBudget
from ..imaging import decode_png, encode_png, fit_long_side
from ..llm.messages import assistant_message, image_part, system_message, text_part, user_message

CHARS_PER_TOKEN = 4
IMAGE_PATCH_PX = 28  # one token per 28x28 pixel patch (the usual vision-encoder granularity)
SUMMARY_HEAD_LINES = 5
SUMMARY_TAIL_LINES = 5


def text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (characters / 4, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def image_tokens(width: int, height: int) -> int:
    """Estimated tokens of an image: one per 28x28 pixel patch."""
    return math.ceil(width / IMAGE_PATCH_PX) * math.ceil(height / IMAGE_PATCH_PX)


def summarise_lines(text: str, head: int = SUMMARY_HEAD_LINES, tail: int = SUMMARY_TAIL_LINES) -> str:
    """The first ``head`` and last ``tail`` lines of ``text`` with a note of how many lines were left out."""
    lines = text.splitlines()
    if len(lines) <= head + tail:
        return text
    cut = len(lines) - head - tail
    return "\n".join(lines[:head] + [f"[... {cut} older output lines summarised away ...]"] + lines[-tail:])


@dataclass
class TextBlock:
    """Text in a message; ``compressible`` text (tool output) may be summarised once it is old."""

    text: str
    compressible: bool = False


@dataclass
class ImageBlock:
    """An image in a message with the label the model sees just before it."""

    label: str
    png: bytes
    width: int
    height: int
    key_frame: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def part(self) -> dict:
        """The full-size image part (built once)."""
        if "full" not in self._cache:
            self._cache["full"] = image_part(self.png)
        return self._cache["full"]

    def thumbnail(self, max_side: int) -> tuple[dict, int, int]:
        """The image part, width and height of a copy whose long side is at most ``max_side`` (built once)."""
        key = ("thumb", max_side)
        if key not in self._cache:
            array = fit_long_side(decode_png(self.png), max_side)
            self._cache[key] = (image_part(encode_png(array)), int(array.shape[1]), int(array.shape[0]))
        return self._cache[key]


Block = TextBlock | ImageBlock


@dataclass
class Entry:
    """One message of the history; ``step`` 0 is the question, k the reply and observation of step k."""

    role: str  # "user" or "assistant"
    step: int
    blocks: list[Block]


@dataclass
class CallContext:
    """What the budget did to one main-model call."""

    estimated_tokens: int
    images_sent: int
    images_thumbnailed: int
    images_dropped: int
    outputs_summarised: int
    over_budget: bool  # still above max_tokens after every reduction


@dataclass
class ContextReport:
    """Context-budget figures over all main calls of a question (peaks per call)."""

    calls: int = 0
    peak_estimated_tokens: int = 0
    peak_images_sent: int = 0
    peak_images_thumbnailed: int = 0
    peak_images_dropped: int = 0
    calls_over_budget: int = 0

    def record(self, call: CallContext) -> None:
        """Fold one call's figures into the report."""
        self.calls += 1
        self.peak_estimated_tokens = max(self.peak_estimated_tokens, call.estimated_tokens)
        self.peak_images_sent = max(self.peak_images_sent, call.images_sent)
        self.peak_images_thumbnailed = max(self.peak_images_thumbnailed, call.images_thumbnailed)
        self.peak_images_dropped = max(self.peak_images_dropped, call.images_dropped)
        self.calls_over_budget += int(call.over_budget)


FULL, THUMB, DROPPED, SUMMARY = "full", "thumb", "dropped", "summary"


def _image_header(block: ImageBlock) -> str:
    return f"[image '{block.label}']"


def _drop_note(block: ImageBlock, step: int) -> str:
    where = "key frame" if block.key_frame else f"from step {step}"
    return f"[image '{block.label}' {where} dropped to fit the context budget]"


class History:
    """The system prompt plus every entry of the main conversation, rendered to fit a ContextBudget."""

    def __init__(self, system_prompt: str, budget: ContextBudget) -> None:
        self.system_prompt = system_prompt
        self.budget = budget
        self.entries: list[Entry] = []

    def add(self, role: str, step: int, blocks: list[Block]) -> None:
        """Append a message; text-only assistant replies are a single TextBlock."""
        self.entries.append(Entry(role, step, list(blocks)))

    def render(self, extra: Entry | None = None) -> tuple[list[dict], CallContext]:
        """OpenAI messages for the next call and what fitting did.

        ``extra`` is a one-off entry for this call only; a user entry after a user message is merged
        into it, so roles keep alternating.
        """
        entries = list(self.entries)
        if extra is not None:
            if entries and entries[-1].role == extra.role == "user":
                last = entries.pop()
                extra = Entry("user", last.step, last.blocks + extra.blocks)
            entries.append(extra)
        states = self._fit(entries)
        messages = [system_message(self.system_prompt)]
        for entry in entries:
            messages.append(self._render_entry(entry, states))
        counts = {state: sum(1 for value in states.values() if value == state) for state in (THUMB, DROPPED, SUMMARY)}
        tokens = self._total_tokens(entries, states)
        images = sum(1 for entry in entries for block in entry.blocks
                     if isinstance(block, ImageBlock) and states.get(id(block), FULL) != DROPPED)
        return messages, CallContext(
            estimated_tokens=tokens, images_sent=images, images_thumbnailed=counts[THUMB],
            images_dropped=counts[DROPPED], outputs_summarised=counts[SUMMARY],
            over_budget=tokens > self.budget.max_tokens,
        )

    # -- fitting -------------------------------------------------------------------------------

    def _block_tokens(self, block: Block, state: str, step: int) -> int:
        if isinstance(block, TextBlock):
            return text_tokens(summarise_lines(block.text) if state == SUMMARY else block.text)
        if state == DROPPED:
            return text_tokens(_drop_note(block, step))
        if state == THUMB:
            _, width, height = block.thumbnail(self.budget.thumbnail_px)
            return text_tokens(_image_header(block)) + image_tokens(width, height)
        return text_tokens(_image_header(block)) + image_tokens(block.width, block.height)

    def _total_tokens(self, entries: list[Entry], states: dict[int, str]) -> int:
        total = text_tokens(self.system_prompt)
        for entry in entries:
            for block in entry.blocks:
                total += self._block_tokens(block, states.get(id(block), FULL), entry.step)
        return total

    def _fit(self, entries: list[Entry]) -> dict[int, str]:
        """Per-block states (by ``id``) that bring the estimate within budget as far as the rules allow."""
        budget = self.budget
        latest = max((entry.step for entry in entries), default=0)
        older = [entry for entry in entries if 0 < entry.step <= latest - budget.keep_recent_steps]
        recent = [entry for entry in entries if entry.step > latest - budget.keep_recent_steps and entry.step != latest]
        newest = [entry for entry in entries if entry.step == latest and latest > 0]
        question = [entry for entry in entries if entry.step == 0]

        def images(group: list[Entry]) -> list[tuple[ImageBlock, int]]:
            return [(block, entry.step) for entry in group for block in entry.blocks if isinstance(block, ImageBlock)]

        states: dict[int, str] = {}
        tokens = self._total_tokens(entries, states)
        image_count = len(images(entries))

        def change(block: Block, step: int, state: str) -> None:
            nonlocal tokens, image_count
            before = states.get(id(block), FULL)
            tokens += self._block_tokens(block, state, step) - self._block_tokens(block, before, step)
            if state == DROPPED and before != DROPPED:
                image_count -= 1
            states[id(block)] = state

        def over_tokens() -> bool:
            return tokens > budget.max_tokens

        def over_any() -> bool:
            return tokens > budget.max_tokens or image_count > budget.max_images

        for block, step in images(older):
            if not over_tokens():
                break
            if max(block.width, block.height) > budget.thumbnail_px:
                change(block, step, THUMB)
        for entry in older:
            for block in entry.blocks:
                long_output = isinstance(block, TextBlock) and block.compressible
                if over_tokens() and long_output and summarise_lines(block.text) != block.text:
                    change(block, entry.step, SUMMARY)
        for block, step in images(older):
            if not over_any():
                break
            change(block, step, DROPPED)
        for block, step in images(question):
            if not over_tokens():
                break
            if max(block.width, block.height) > budget.thumbnail_px:
                change(block, step, THUMB)
        # The hard image cap: recent steps oldest first, then key frames from the last, then the newest step.
        last_resort = images(recent) + list(reversed(images(question))) + images(newest)
        for block, step in last_resort:
            if image_count <= budget.max_images:
                break
            change(block, step, DROPPED)
        return states

    # -- rendering -----------------------------------------------------------------------------

    def _render_entry(self, entry: Entry, states: dict[int, str]) -> dict:
        if entry.role == "assistant":
            return assistant_message("\n".join(block.text for block in entry.blocks if isinstance(block, TextBlock)))
        parts: list[dict] = []
        pending: list[str] = []

        def flush() -> None:
            if pending:
                parts.append(text_part("\n".join(pending)))
                pending.clear()

        for block in entry.blocks:
            state = states.get(id(block), FULL)
            if isinstance(block, TextBlock):
                pending.append(summarise_lines(block.text) if state == SUMMARY else block.text)
            elif state == DROPPED:
                pending.append(_drop_note(block, entry.step))
            else:
                pending.append(_image_header(block))
                flush()
                parts.append(block.thumbnail(self.budget.thumbnail_px)[0] if state == THUMB else block.part())
        flush()
        return user_message(parts)
