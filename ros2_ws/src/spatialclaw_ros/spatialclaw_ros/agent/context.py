"""The main conversation's history, rendered for each call within the context budget and prefix-cache friendly.

Model servers (vLLM, SGLang, hosted APIs) reuse their work on a prompt's prefix when the next call
starts with the same tokens, so earlier messages must not change from call to call. Each message is
rendered once and reused: while the history fits the budget, every call is the previous one plus
the new messages. When a call would exceed the budget (``max_tokens`` or ``max_images``), older
material shrinks in one large step, down to ``compact_to`` of the budget, so that the calls after
it share their prefix again. Older step images are thumbnailed, older long outputs cut to their
first and last lines, older step images dropped (a note says so); if the estimate is still above
``max_tokens``, key frames are thumbnailed. The newest ``keep_recent_steps`` steps are kept whole,
except that the image count never exceeds ``max_images``. A shrunk block stays shrunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import ContextBudget
from ..llm.messages import assistant_message, image_part, json_bytes, system_message, text_part, user_message
from ..llm.vision import EncodedImage, ImageEncoding

CHARS_PER_TOKEN = 4
SUMMARY_HEAD_LINES = 5
SUMMARY_TAIL_LINES = 5


def text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (characters / 4, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


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


@dataclass(eq=False)
class ImageBlock:
    """An image in a message, as the model is sent it, with the label the model sees just before it;
    ``source_size`` (width, height) is the image's own size where it was sent smaller."""

    label: str
    image: EncodedImage
    key_frame: bool = False
    source_size: tuple[int, int] | None = None


Block = TextBlock | ImageBlock


@dataclass
class Entry:
    """One message of the history; ``step`` 0 is the question, k the reply and observation of step k."""

    role: str  # "user" or "assistant"
    step: int
    blocks: list[Block]


@dataclass
class CallContext:
    """What one main-model call carries (estimated) and what fitting it to the budget did."""

    estimated_tokens: int  # text_tokens + image_tokens
    text_tokens: int
    image_tokens: int
    bytes_sent: int  # the messages as compact JSON: the request body less its few settings
    images_sent: int
    images_thumbnailed: int
    images_dropped: int
    outputs_summarised: int
    over_budget: bool  # still above max_tokens after every reduction
    compacted: bool  # this call shrank earlier messages (its prefix differs from the previous call's)
    prefix_share: float  # share of estimated_tokens identical to the previous call's prompt (0 for the first)


@dataclass
class ContextReport:
    """Context-budget figures over all main calls of a question (peaks per call, compactions, prefix reuse)."""

    calls: int = 0
    peak_estimated_tokens: int = 0
    peak_images_sent: int = 0
    peak_images_thumbnailed: int = 0
    peak_images_dropped: int = 0
    calls_over_budget: int = 0
    compactions: int = 0
    prefix_share_mean: float = 0.0  # over the calls after the first

    def record(self, call: CallContext) -> None:
        """Fold one call's figures into the report."""
        if self.calls:
            self.prefix_share_mean += (call.prefix_share - self.prefix_share_mean) / self.calls
        self.calls += 1
        self.peak_estimated_tokens = max(self.peak_estimated_tokens, call.estimated_tokens)
        self.peak_images_sent = max(self.peak_images_sent, call.images_sent)
        self.peak_images_thumbnailed = max(self.peak_images_thumbnailed, call.images_thumbnailed)
        self.peak_images_dropped = max(self.peak_images_dropped, call.images_dropped)
        self.calls_over_budget += int(call.over_budget)
        self.compactions += int(call.compacted)


FULL, THUMB, DROPPED, SUMMARY = "full", "thumb", "dropped", "summary"


@dataclass(frozen=True)
class _Rendered:
    """One message as sent, with its estimated tokens (per content part, and in all) and its JSON size."""

    message: dict
    part_tokens: tuple[int, ...]  # one entry per content part (one for string content)
    tokens: int
    image_tokens: int
    images: int
    bytes: int

    @classmethod
    def of(cls, message: dict, part_tokens: list[int], image_tokens: int = 0, images: int = 0) -> "_Rendered":
        return cls(message, tuple(part_tokens), sum(part_tokens), image_tokens, images, json_bytes(message))


@dataclass(frozen=True)
class _Totals:
    """Sums over the messages of a call."""

    tokens: int = 0
    image_tokens: int = 0
    images: int = 0
    bytes: int = 0
    messages: int = 0

    @classmethod
    def of(cls, items: list[_Rendered]) -> "_Totals":
        totals = cls()
        for item in items:
            totals = totals.plus(item)
        return totals

    def plus(self, item: _Rendered, sign: int = 1) -> "_Totals":
        return _Totals(self.tokens + sign * item.tokens, self.image_tokens + sign * item.image_tokens,
                       self.images + sign * item.images, self.bytes + sign * item.bytes, self.messages + sign)


def _image_header(block: ImageBlock) -> str:
    """The line before an image; it names the original size when the image was sent smaller, so that pixel
    coordinates read off it can be scaled back."""
    sent = (block.image.width, block.image.height)
    if block.source_size is None or block.source_size == sent:
        return f"[image '{block.label}']"
    return f"[image '{block.label}', sent at {sent[0]}x{sent[1]} of {block.source_size[0]}x{block.source_size[1]} px]"


def _drop_note(block: ImageBlock, step: int) -> str:
    where = "key frame" if block.key_frame else f"from step {step}"
    return f"[image '{block.label}' {where} dropped to fit the context budget]"


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (bisection over slice comparisons)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _shared_tokens(before: _Rendered, after: _Rendered) -> int:
    """Estimated tokens at the start of ``after`` identical to the start of ``before`` (same role)."""
    if before.message["role"] != after.message["role"]:
        return 0
    old, new = before.message["content"], after.message["content"]
    old_parts = [text_part(old)] if isinstance(old, str) else old
    new_parts = [text_part(new)] if isinstance(new, str) else new
    shared = 0
    for old_part, new_part, tokens in zip(old_parts, new_parts, after.part_tokens):
        if old_part == new_part:
            shared += tokens
            continue
        if old_part.get("type") == new_part.get("type") == "text":
            shared += _common_prefix_length(old_part["text"], new_part["text"]) // CHARS_PER_TOKEN
        break
    return shared


class History:
    """The system prompt plus every entry of the main conversation, rendered to fit a ContextBudget."""

    def __init__(self, system_prompt: str, budget: ContextBudget, encoding: ImageEncoding) -> None:
        self.system_prompt = system_prompt
        self.budget = budget
        self.encoding = encoding
        self.entries: list[Entry] = []
        self._system = _Rendered.of(system_message(system_prompt), [text_tokens(system_prompt)])
        self._states: dict[int, str] = {}  # id(block) -> THUMB, DROPPED or SUMMARY; absent = FULL
        self._thumbnails: dict[int, EncodedImage] = {}  # id(block) -> its thumbnail
        self._rendered: dict[int, _Rendered] = {}  # id(entry) -> the entry as last sent
        self._sent: list[_Rendered] = [self._system]  # the system prompt and every entry, as the next call sends
        self._totals = _Totals.of(self._sent)  # ... and their sums
        self._previous: list[_Rendered] = []  # the previous call's messages
        self._previous_tokens = 0
        self._previous_is_prefix = False  # the previous call sent a prefix of _sent (no extra entry)

    def add(self, role: str, step: int, blocks: list[Block]) -> None:
        """Append a message; text-only assistant replies are a single TextBlock."""
        self.entries.append(Entry(role, step, list(blocks)))

    def render(self, extra: Entry | None = None) -> tuple[list[dict], CallContext]:
        """OpenAI messages for the next call and what fitting did.

        ``extra`` is a one-off entry for this call only; a user entry after a user message is merged
        into it, so roles keep alternating. Only messages added since the last call are rendered, and
        the shared prefix is known without comparing, unless an extra entry or a compaction intervenes.
        """
        for entry in self.entries[len(self._sent) - 1:]:
            self._sent.append(self._cached(entry))
            self._totals = self._totals.plus(self._sent[-1])
        rendered, totals = self._with(extra)
        over = totals.tokens > self.budget.max_tokens or totals.images > self.budget.max_images
        compacted = over and self._compact(totals)
        if compacted:
            self._sent = [self._system] + [self._cached(entry) for entry in self.entries]
            self._totals = _Totals.of(self._sent)
            rendered, totals = self._with(extra)
        if self._previous_is_prefix and extra is None and not compacted:
            shared = self._previous_tokens
        else:
            shared = self._shared_prefix(rendered)
        self._previous, self._previous_tokens = rendered, totals.tokens
        self._previous_is_prefix = extra is None
        counts = self._state_counts()
        return [item.message for item in rendered], CallContext(
            estimated_tokens=totals.tokens, text_tokens=totals.tokens - totals.image_tokens,
            image_tokens=totals.image_tokens, bytes_sent=totals.bytes + totals.messages + 1,
            images_sent=totals.images, images_thumbnailed=counts[THUMB], images_dropped=counts[DROPPED],
            outputs_summarised=counts[SUMMARY], over_budget=totals.tokens > self.budget.max_tokens,
            compacted=compacted, prefix_share=shared / totals.tokens if totals.tokens else 0.0,
        )

    # -- rendering (each entry once, again only after compaction changed it) ---------------------

    def _with(self, extra: Entry | None) -> tuple[list[_Rendered], _Totals]:
        """The messages of a call with ``extra`` (merged into a last user message), and their sums."""
        if extra is None:
            return list(self._sent), self._totals
        if self.entries and self.entries[-1].role == extra.role == "user":
            last = self.entries[-1]
            merged = self._render_entry(Entry("user", last.step, last.blocks + extra.blocks))
            return self._sent[:-1] + [merged], self._totals.plus(self._sent[-1], -1).plus(merged)
        alone = self._render_entry(extra)
        return self._sent + [alone], self._totals.plus(alone)

    def _state_counts(self) -> dict[str, int]:
        counts = {THUMB: 0, DROPPED: 0, SUMMARY: 0}
        for state in self._states.values():
            counts[state] += 1
        return counts

    def _cached(self, entry: Entry) -> _Rendered:
        rendered = self._rendered.get(id(entry))
        if rendered is None:
            rendered = self._rendered[id(entry)] = self._render_entry(entry)
        return rendered

    def _state(self, block: Block) -> str:
        return self._states.get(id(block), FULL)

    def _thumbnail(self, block: ImageBlock) -> EncodedImage:
        if id(block) not in self._thumbnails:
            self._thumbnails[id(block)] = self.encoding.encode_bytes(block.image.data,
                                                                     max_side=self.budget.thumbnail_px)
        return self._thumbnails[id(block)]

    def _render_entry(self, entry: Entry) -> _Rendered:
        if entry.role == "assistant":
            text = "\n".join(block.text for block in entry.blocks if isinstance(block, TextBlock))
            return _Rendered.of(assistant_message(text), [text_tokens(text)])
        parts: list[dict] = []
        part_tokens: list[int] = []
        pending: list[str] = []
        image_tokens = 0

        def flush() -> None:
            if pending:
                text = "\n".join(pending)
                parts.append(text_part(text))
                part_tokens.append(text_tokens(text))
                pending.clear()

        for block in entry.blocks:
            state = self._state(block)
            if isinstance(block, TextBlock):
                pending.append(summarise_lines(block.text) if state == SUMMARY else block.text)
            elif state == DROPPED:
                pending.append(_drop_note(block, entry.step))
            else:
                pending.append(_image_header(block))
                flush()
                image = self._thumbnail(block) if state == THUMB else block.image
                parts.append(image_part(image.data))
                part_tokens.append(image.tokens)
                image_tokens += image.tokens
        flush()
        images = sum(1 for part in parts if part["type"] == "image_url")
        return _Rendered.of(user_message(parts), part_tokens, image_tokens, images)

    def _shared_prefix(self, rendered: list[_Rendered]) -> int:
        """Estimated tokens at the start of ``rendered`` identical to the previous call's messages."""
        shared = 0
        for before, after in zip(self._previous, rendered):
            if before is after or before.message == after.message:
                shared += after.tokens
                continue
            return shared + _shared_tokens(before, after)
        return shared

    # -- compaction (rare and large: down to compact_to of the budget) --------------------------

    def _block_tokens(self, block: Block, state: str, step: int) -> int:
        if isinstance(block, TextBlock):
            return text_tokens(summarise_lines(block.text) if state == SUMMARY else block.text)
        if state == DROPPED:
            return text_tokens(_drop_note(block, step))
        image = self._thumbnail(block) if state == THUMB else block.image
        return text_tokens(_image_header(block)) + image.tokens

    def _compact(self, totals: _Totals) -> bool:
        """Shrink older material (then key frames, then the image cap) and forget the changed renderings;
        ``totals`` are those of the call before compaction. True if anything shrank."""
        budget = self.budget
        entries = self.entries
        latest = max((entry.step for entry in entries), default=0)
        cut = latest - budget.keep_recent_steps
        older = [entry for entry in entries if 0 < entry.step <= cut]
        recent = [entry for entry in entries if cut < entry.step < latest]
        newest = [entry for entry in entries if entry.step == latest and latest > 0]
        question = [entry for entry in entries if entry.step == 0]
        tokens, images = totals.tokens, totals.images
        low_tokens, low_images = budget.max_tokens * budget.compact_to, budget.max_images * budget.compact_to
        changed: set[int] = set()

        def shrink(entry: Entry, block: Block, state: str) -> None:
            nonlocal tokens, images
            before = self._state(block)
            tokens += self._block_tokens(block, state, entry.step) - self._block_tokens(block, before, entry.step)
            images -= int(state == DROPPED and before != DROPPED)
            self._states[id(block)] = state
            changed.add(id(entry))

        def pictures(group: list[Entry]) -> list[tuple[Entry, ImageBlock]]:
            return [(entry, block) for entry in group for block in entry.blocks if isinstance(block, ImageBlock)]

        def large(block: ImageBlock) -> bool:
            return self._state(block) == FULL and max(block.image.width, block.image.height) > budget.thumbnail_px

        for entry, block in pictures(older):
            if tokens <= low_tokens:
                break
            if large(block):
                shrink(entry, block, THUMB)
        for entry in older:
            for block in entry.blocks:
                if tokens > low_tokens and isinstance(block, TextBlock) and block.compressible \
                        and self._state(block) == FULL and summarise_lines(block.text) != block.text:
                    shrink(entry, block, SUMMARY)
        for entry, block in pictures(older):
            if tokens <= low_tokens and images <= low_images:
                break
            if self._state(block) != DROPPED:
                shrink(entry, block, DROPPED)
        if tokens > budget.max_tokens:
            for entry, block in pictures(question):
                if tokens <= low_tokens:
                    break
                if large(block):
                    shrink(entry, block, THUMB)
        # The hard image cap: recent steps oldest first, then key frames from the last, then the newest step.
        for entry, block in pictures(recent) + list(reversed(pictures(question))) + pictures(newest):
            if images <= budget.max_images:
                break
            if self._state(block) != DROPPED:
                shrink(entry, block, DROPPED)
        for key in changed:
            self._rendered.pop(key, None)
        return bool(changed)
