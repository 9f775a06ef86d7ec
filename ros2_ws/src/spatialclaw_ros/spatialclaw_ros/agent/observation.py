"""What the model is told after each cell: status, output, error, variables, restarts and shown images."""

from __future__ import annotations

from collections.abc import Sequence

from ..kernel.results import CellResult, CellStatus, VariableSummary
from ..llm.vision import ImageEncoding
from .context import Block, ImageBlock, TextBlock

LAST_STEP_WARNING = "WARNING: this is your last step: call ReturnAnswer now."


def cut_middle(text: str, budget: int) -> str:
    """``text`` if it fits ``budget`` characters, else its head and tail around a ``[... N chars cut ...]`` marker."""
    if len(text) <= budget:
        return text
    head = budget // 2
    tail = budget - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} chars cut ...]\n{text[len(text) - tail:]}"


def _status_line(result: CellResult, step: int, max_steps: int) -> str:
    descriptions = {
        CellStatus.OK: "ran successfully",
        CellStatus.ERROR: "raised an error",
        CellStatus.REJECTED: "was refused by the safety check and did not run",
        CellStatus.TIMEOUT: "timed out",
        CellStatus.CRASHED: "crashed the kernel process",
        CellStatus.CANCELLED: "was cancelled",
        CellStatus.ANSWERED: "returned an accepted answer",
    }
    return f"Step {step}/{max_steps}: the cell {descriptions[result.status]} ({result.duration_s:.2f} s)."


def _variable_lines(title: str, summaries: list[VariableSummary]) -> list[str]:
    if not summaries:
        return []
    return [f"{title}:"] + [f"  {item.name}: {item.type} {item.summary}".rstrip() for item in summaries]


def output_text(result: CellResult) -> str:
    """stdout followed by stderr (marked), uncut."""
    text = result.stdout
    if result.stderr:
        text = (text.rstrip("\n") + "\n" if text else "") + "[stderr]\n" + result.stderr
    return text


def build_observation(result: CellResult, *, step: int, max_steps: int, output_budget_chars: int,
                      encoding: ImageEncoding, refusals: Sequence[str] = ()) -> list[Block]:
    """The user-message blocks reporting ``result`` of ``step`` to the model, shown images in ``encoding``.

    ``refusals`` are the reasons ReturnAnswer calls in this cell were refused for.
    """
    blocks: list[Block] = [TextBlock(_status_line(result, step, max_steps))]
    output = output_text(result)
    if output.strip():
        blocks.append(TextBlock("Output:\n" + cut_middle(output, output_budget_chars), compressible=True))
    else:
        blocks.append(TextBlock("Output: (none)"))
    details: list[str] = []
    for reason in refusals:
        details.append(f"ReturnAnswer was refused: {reason}")
    if result.error:
        details.append("Error:\n" + result.error.rstrip())
    details += _variable_lines("New variables", result.variables.new)
    details += _variable_lines("Changed variables", result.variables.changed)
    if result.variables.deleted:
        details.append("Deleted variables: " + ", ".join(result.variables.deleted))
    if result.restart is not None:
        restart = result.restart
        details.append(f"The kernel was restarted ({restart.reason}).")
        if restart.restored:
            details.append("Restored variables: " + ", ".join(restart.restored))
        if restart.lost:
            details.append("LOST variables (re-create them before use): " + ", ".join(restart.lost))
    if details:
        blocks.append(TextBlock("\n".join(details)))
    for number, image in enumerate(result.images, start=1):
        label = f"step {step} image {number}" + (f": {image.label}" if image.label else "")
        blocks.append(ImageBlock(label=label, image=encoding.encode_bytes(image.png),
                                 source_size=(image.width, image.height)))
    return blocks + last_step_note(step, max_steps)


def last_step_note(step: int, max_steps: int) -> list[Block]:
    """The warning that goes with the feedback on ``step`` when the next step is the last one."""
    return [TextBlock(LAST_STEP_WARNING)] if step + 1 == max_steps else []
