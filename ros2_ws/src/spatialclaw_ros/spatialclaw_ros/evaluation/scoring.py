"""Scoring as the public spatial benchmarks score: option letters by exact match, numbers by mean relative accuracy.

Multiple choice: the predicted letter (the accepted answer's option, else the first letter a reply leads with,
as VSI-Bench's and CV-Bench's scripts read it) must equal the ground-truth letter. Numbers: VSI-Bench's mean
relative accuracy (MRA), the share of the thresholds 0.50, 0.55, ..., 0.95 at which the relative error
``|pred - gt| / |gt|`` is at most ``1 - threshold``. Both sides are compared in SI units (MRA is scale-free).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..answers import Answer, AnswerKind, QuestionSpec, analyse_question, check_answer

#: VSI-Bench's confidence thresholds: 0.50, 0.55, ..., 0.95.
MRA_THRESHOLDS = np.linspace(0.50, 0.95, 10)
MULTIPLE_CHOICE = "multiple_choice"
NUMERIC = "numeric"
_LEADING_LETTER = re.compile(r"^[\s(\[{*]*([A-Ja-j])(?:[)\]}.:*]|\s|$)")


def mean_relative_accuracy(predicted: float | None, truth: float) -> float:
    """VSI-Bench's MRA of ``predicted`` against ``truth``.

    Edge cases the VSI-Bench script leaves undefined: a zero truth scores 1 only for an exact 0 (no relative
    error exists); a negative truth is compared by magnitude ``|pred - gt| / |gt|``; a missing, NaN or
    infinite prediction scores 0, as does any error above 50 %.
    """
    if predicted is None or not math.isfinite(predicted) or not math.isfinite(truth):
        return 0.0
    if truth == 0:
        return 1.0 if predicted == 0 else 0.0
    relative_error = abs(predicted - truth) / abs(truth)
    return float(np.mean(relative_error <= 1.0 - MRA_THRESHOLDS))


def leading_letter(text: str | None) -> str | None:
    """The option letter a reply leads with: "B", "(B) left", "B. left", "**B**" -> "B"; None otherwise."""
    if not text:
        return None
    match = _LEADING_LETTER.match(text.strip())
    return match.group(1).upper() if match else None


@dataclass(frozen=True)
class Truth:
    """What a row's ground truth is, read once: an option letter or a number in SI units (degrees for angles)."""

    kind: str  # MULTIPLE_CHOICE or NUMERIC
    letter: str | None = None
    value: float | None = None
    tolerance: float | None = None  # SI: a numeric answer this close scores 1 (the row's ``tolerance``)


@dataclass(frozen=True)
class Score:
    """One question's score in [0, 1] and what it compared (``predicted`` is a letter or an SI number)."""

    value: float
    kind: str
    predicted: str | float | None
    truth: str | float


class BadAnswer(ValueError):
    """A row's ground truth cannot be read (not one of its option letters, not a number)."""


def read_truth(question: str, choices: list[str], answer, unit: str | None = None,
               tolerance: float | None = None) -> Truth:
    """The ground truth of a row: a letter among its options, or a number (``unit`` or the question's unit) with
    an optional absolute ``tolerance`` in the same unit.

    Raises BadAnswer naming what is wrong, so a malformed row is skipped with a reason."""
    spec = analyse_question(question, choices)
    if spec.kind is AnswerKind.CHOICE:
        label = leading_letter(str(answer))
        if label not in spec.labels and isinstance(answer, (str, int)):  # an option's text, or its number
            verdict = check_answer(spec, answer)
            label = verdict.answer.choice if verdict.accepted else None
        if label not in spec.labels:
            raise BadAnswer(f"answer {answer!r} is not one of the option labels {', '.join(spec.labels)}")
        return Truth(MULTIPLE_CHOICE, letter=label)
    number = _number(answer)
    if number is None:
        raise BadAnswer(f"answer {answer!r} is neither an option letter (the row has no options) nor a number")
    value = _to_si(spec, number, unit)
    scale = value / number if number else _to_si(spec, 1.0, unit)
    return Truth(NUMERIC, value=value, tolerance=None if tolerance is None else abs(tolerance * scale))


def score_answer(truth: Truth, question: str, choices: list[str], answer: Answer | None) -> Score:
    """Score an accepted answer (None: no answer, 0) against the row's truth."""
    if truth.kind == MULTIPLE_CHOICE:
        predicted = None
        if answer is not None:
            predicted = answer.choice or leading_letter(answer.text)
        return Score(float(predicted == truth.letter), truth.kind, predicted, truth.letter)
    predicted_si = None
    if answer is not None:
        if answer.value is not None:
            predicted_si = float(answer.value)
        else:  # a count, or a text answer that still holds a number (in the question's unit)
            number = _number(answer.text)
            predicted_si = None if number is None else _to_si(analyse_question(question, choices), number, None)
    within = (predicted_si is not None and truth.tolerance is not None
              and abs(predicted_si - truth.value) <= truth.tolerance)
    value = 1.0 if within else mean_relative_accuracy(predicted_si, truth.value)
    return Score(value, truth.kind, predicted_si, truth.value)


def _number(value) -> float | None:
    """A finite number from an int/float or the first number in a string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    match = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", str(value))
    return float(match.group(0)) if match else None


def _to_si(spec: QuestionSpec, number: float, unit: str | None) -> float:
    """``number`` (in ``unit``, else the unit the question names) converted the way accepted answers are."""
    if spec.kind is not AnswerKind.NUMBER:
        return number
    stated = unit or spec.unit_hint or spec.si_unit
    verdict = check_answer(spec, number, stated)
    if not verdict.accepted:  # e.g. a negative length: keep the raw number, MRA still compares it
        return number
    return float(verdict.answer.value)
