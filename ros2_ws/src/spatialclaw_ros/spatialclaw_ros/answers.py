"""Does a ReturnAnswer value fit the question? Classify the question, then check and normalise answers.

``analyse_question`` reads what kind of answer a question wants (an option, a measurement and its
unit, a count, yes/no or free text); ``check_answer`` accepts a value of that kind, normalised to SI
units (angles in degrees), or refuses it with a reason the model can act on.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Sequence


class AnswerKind(str, Enum):
    """What kind of answer a question wants."""

    CHOICE = "choice"
    NUMBER = "number"
    COUNT = "count"
    YES_NO = "yes_no"
    TEXT = "text"


# --- units -----------------------------------------------------------------------------------------

#: The unit every value of a dimension is normalised to.
SI_UNITS = {"length": "m", "area": "m^2", "volume": "m^3", "angle": "deg", "time": "s", "speed": "m/s"}

#: Length units: symbol -> (metres, spoken names). Area and volume units are derived from these.
_LENGTHS = {
    "m": (1.0, ("meter", "meters", "metre", "metres")),
    "cm": (0.01, ("centimeter", "centimeters", "centimetre", "centimetres")),
    "mm": (0.001, ("millimeter", "millimeters", "millimetre", "millimetres")),
    "km": (1000.0, ("kilometer", "kilometers", "kilometre", "kilometres")),
    "in": (0.0254, ("inch", "inches")),
    "ft": (0.3048, ("foot", "feet")),
    "yd": (0.9144, ("yard", "yards")),
}
_OTHER_UNITS = {  # symbol -> (dimension, factor to the SI unit, spoken names)
    "L": ("volume", 1e-3, ("l", "liter", "liters", "litre", "litres")),
    "mL": ("volume", 1e-6, ("ml", "milliliter", "milliliters", "millilitre", "millilitres")),
    "deg": ("angle", 1.0, ("°", "degree", "degrees", "degs")),
    "rad": ("angle", 180.0 / math.pi, ("radian", "radians", "rads")),
    "s": ("time", 1.0, ("sec", "secs", "second", "seconds")),
    "ms": ("time", 1e-3, ("millisecond", "milliseconds")),
    "min": ("time", 60.0, ("mins", "minute", "minutes")),
    "h": ("time", 3600.0, ("hr", "hrs", "hour", "hours")),
    "m/s": ("speed", 1.0, ("mps", "meters per second", "metres per second", "meter per second")),
    "cm/s": ("speed", 0.01, ("centimeters per second", "centimetres per second")),
    "km/h": ("speed", 1 / 3.6, ("kph", "kmh", "kilometers per hour", "kilometres per hour")),
    "mph": ("speed", 0.44704, ("miles per hour",)),
}


@dataclass(frozen=True)
class _Unit:
    symbol: str
    dimension: str
    factor: float  # multiply a value in this unit by factor to get the SI unit of its dimension


def _unit_table() -> dict[str, _Unit]:
    """Every accepted spelling (lower case, single spaces) -> its unit."""
    table: dict[str, _Unit] = {}
    for symbol, (metres, names) in _LENGTHS.items():
        square, cube = _Unit(f"{symbol}^2", "area", metres ** 2), _Unit(f"{symbol}^3", "volume", metres ** 3)
        for spelling in (symbol, *names):
            table[spelling] = _Unit(symbol, "length", metres)
            table[f"square {spelling}"] = table[f"sq {spelling}"] = table[f"sq. {spelling}"] = square
            table[f"cubic {spelling}"] = table[f"cu {spelling}"] = cube
        for suffix in ("^2", "2", "²", "**2"):
            table[symbol + suffix] = square
        for suffix in ("^3", "3", "³", "**3"):
            table[symbol + suffix] = cube
    for symbol, (dimension, factor, names) in _OTHER_UNITS.items():
        for spelling in (symbol.lower(), *names):
            table[spelling] = _Unit(symbol, dimension, factor)
    return table


_UNITS = _unit_table()
_UNIT_PATTERN = "|".join(re.escape(spelling) for spelling in sorted(_UNITS, key=len, reverse=True))


def _lookup_unit(text: str) -> _Unit | None:
    return _UNITS.get(" ".join(text.strip().lower().rstrip(".").split()))


def _units_of(dimension: str) -> str:
    """A short list of unit symbols of ``dimension`` for messages."""
    symbols = dict.fromkeys(unit.symbol for unit in _UNITS.values() if unit.dimension == dimension)
    return ", ".join(symbols)


# --- questions -------------------------------------------------------------------------------------

#: Measure words -> their dimension (QuestionSpec.measure is one of these keys; each dimension is one too).
MEASURES = {"distance": "length", "length": "length", "height": "length", "width": "length", "depth": "length",
            "size": "length", "area": "area", "volume": "volume", "angle": "angle", "time": "time",
            "speed": "speed"}
#: Measures whose values cannot be negative.
_NON_NEGATIVE = {"length", "area", "volume", "time", "speed"}

# Phrases tried first, in order: the wh-phrase says what is measured.
_MEASURE_PHRASES = [
    (r"\bhow (?:fast|quickly)\b", "speed"),
    (r"\bhow long (?:does|did|do|will|would|has|have|had|can|could)\b", "time"),
    (r"\bhow long\b.*\b(?:seconds?|minutes?|hours?)\b", "time"),
    (r"\bhow (?:far|close)\b", "distance"),
    (r"\bhow (?:tall|high)\b", "height"),
    (r"\bhow wide\b", "width"),
    (r"\bhow deep\b", "depth"),
    (r"\bhow long\b", "length"),
    (r"\bhow (?:big|large)\b", "size"),
]
# Nouns naming a measure; the earliest in the question wins.
_MEASURE_NOUNS = {"distance": "distance", "length": "length", "height": "height", "width": "width",
                  "depth": "depth", "size": "size", "area": "area", "volume": "volume", "angle": "angle",
                  "rotation": "angle", "heading": "angle", "yaw": "angle", "duration": "time", "time": "time",
                  "speed": "speed", "velocity": "speed"}
# Verbs implying a measure, used only when no noun names one.
_MEASURE_VERBS = {r"\b(?:turn|turns|turned|turning|rotate|rotates|rotated|rotating)\b": "angle"}
# Questions that ask for a thing, not a quantity ("Which object has the largest height?").
_ASKS_FOR_A_THING = re.compile(r"^(?:which|where|who|whose|why|what (?:object|item|thing|colou?r|kind|type|shape))\b")

_YES_NO_STARTS = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
                  "has", "have", "had", "shall", "may", "might", "must", "isn't", "aren't", "doesn't", "don't",
                  "didn't", "wasn't", "weren't")
_COUNT_WORDS = {word: number for number, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_OPTION_MARK = re.compile(r"(?:(?<=\s)|^)(?:\(([A-J])\)|([A-J])[.):])(?=\s)")
_LABELLED = re.compile(r"^\s*(?:\(([A-Ja-j])\)|([A-Ja-j])[.):])\s*(.*)$", re.S)
_UNIT_HINT = re.compile(rf"\bin\s+(?:units of\s+)?(?:the\s+)?({_UNIT_PATTERN})(?![\w/^²³])", re.I)


@dataclass
class QuestionSpec:
    """What a question asks for: options (without their letters; A, B, ... by position), the answer kind,
    the measure (a key of MEASURES) for NUMBER questions, and a unit the question itself asked for."""

    question: str
    choices: list[str] = field(default_factory=list)
    kind: AnswerKind = AnswerKind.TEXT
    measure: str | None = None
    unit_hint: str | None = None

    @property
    def letters(self) -> list[str]:
        """The option letters, A, B, ... one per choice."""
        return [chr(ord("A") + i) for i in range(len(self.choices))]

    @property
    def si_unit(self) -> str | None:
        """The unit a NUMBER answer is normalised to, or None without a measure."""
        return SI_UNITS[MEASURES[self.measure]] if self.measure else None


def _inline_options(question: str) -> tuple[str, list[str]]:
    """Split "Which? A. red B. blue" into the question and its options; no options -> (question, [])."""
    marks = list(_OPTION_MARK.finditer(question))
    chain, expected = [], "A"
    for mark in marks:
        letter = mark.group(1) or mark.group(2)
        if letter == expected:
            chain.append(mark)
            expected = chr(ord(expected) + 1)
    if len(chain) < 2:
        return question, []
    options = []
    for mark, following in zip(chain, chain[1:] + [None]):
        end = following.start() if following else len(question)
        options.append(question[mark.end():end].strip().rstrip(",;").strip())
    return question[:chain[0].start()].strip(), options


def _strip_label(option: str, position: int) -> str:
    """"B. blue" at position 1 -> "blue"; an unlabelled or differently labelled option is kept whole."""
    match = _LABELLED.match(option)
    if match and (match.group(1) or match.group(2)).upper() == chr(ord("A") + position):
        return match.group(3).strip()
    return option.strip()


def _asked_sentence(question: str) -> str:
    """The sentence that asks: the last one ending in "?", else the whole text."""
    asked = [s for s in re.split(r"(?<=[.?!])\s+", question.strip()) if s.endswith("?")]
    return asked[-1] if asked else question.strip()


def _measure_of(asked: str) -> str | None:
    """The measure a question sentence asks for (a key of MEASURES), or None."""
    for pattern, measure in _MEASURE_PHRASES:
        if re.search(pattern, asked):
            return measure
    nouns = [(match.start(), _MEASURE_NOUNS[match.group(1)]) for match in
             re.finditer(r"\b(" + "|".join(_MEASURE_NOUNS) + r")\b", asked)]
    if nouns:
        return min(nouns)[1]
    for pattern, measure in _MEASURE_VERBS.items():
        if re.search(pattern, asked):
            return measure
    return None


def _how_many_unit(asked: str) -> _Unit | None:
    """The unit in "how many degrees/square meters/seconds ...", spelled out; None for "how many chairs"."""
    match = re.search(r"\bhow many\s+([\w°²³/^]+)(?:\s+([\w°²³/^]+))?", asked)
    if match is None:
        return None
    first, second = match.groups()
    for spelling in ([f"{first} {second}"] if second else []) + [first]:
        unit = _lookup_unit(spelling)
        if unit and len(spelling) >= 4:  # a spoken unit name, not a symbol such as "in" or "s"
            return unit
    return None


def analyse_question(question: str, choices: Sequence[str] = ()) -> QuestionSpec:
    """The QuestionSpec of ``question``; options come from ``choices`` or from the text ("A. red B. blue")."""
    if choices:
        stem, options = question, [_strip_label(str(choice), i) for i, choice in enumerate(choices)]
    else:
        stem, options = _inline_options(question)
    if options:
        return QuestionSpec(question, options, AnswerKind.CHOICE)
    stated = _UNIT_HINT.search(stem)
    hint = _lookup_unit(stated.group(1)) if stated else None
    asked = _asked_sentence(stem).lower()
    words = asked.split()
    if (words and words[0] in _YES_NO_STARTS and " or " not in asked) or re.search(r"\byes(?: or |/)no\b", asked):
        return QuestionSpec(question, [], AnswerKind.YES_NO)
    if re.search(r"\bhow many\b", asked):
        unit = _how_many_unit(asked)
        if unit is None:
            return QuestionSpec(question, [], AnswerKind.COUNT)
        return _number_spec(question, unit.dimension, hint or unit)
    if re.search(r"\b(?:number of|count)\b", asked):
        return QuestionSpec(question, [], AnswerKind.COUNT)
    measure = None if _ASKS_FOR_A_THING.match(asked) else _measure_of(asked)
    if measure or hint:
        return _number_spec(question, measure, hint)
    return QuestionSpec(question, [], AnswerKind.TEXT)


def _number_spec(question: str, measure: str | None, hint: _Unit | None) -> QuestionSpec:
    """A NUMBER spec; a stated unit of another dimension than the measure word wins ("size ... in m^2")."""
    if hint and (measure is None or MEASURES[measure] != hint.dimension):
        measure = hint.dimension
    return QuestionSpec(question, [], AnswerKind.NUMBER, measure, hint.symbol if hint else None)


def describe_expected(spec: QuestionSpec) -> str:
    """One line telling the model what ReturnAnswer should be given for ``spec``."""
    if spec.kind is AnswerKind.CHOICE:
        options = "; ".join(f"{letter}. {text}" for letter, text in zip(spec.letters, spec.choices))
        return f"one option letter, e.g. ReturnAnswer('A') (options: {options})"
    if spec.kind is AnswerKind.YES_NO:
        return "yes or no, e.g. ReturnAnswer('yes') or ReturnAnswer(False)"
    if spec.kind is AnswerKind.COUNT:
        return "a non-negative whole number, e.g. ReturnAnswer(3)"
    if spec.kind is AnswerKind.NUMBER and spec.measure:
        unit = spec.unit_hint or spec.si_unit
        return f"the {spec.measure} as a number with its unit, e.g. ReturnAnswer(2.4, unit='{unit}')"
    if spec.kind is AnswerKind.NUMBER:
        return "a number, e.g. ReturnAnswer(2.4)"
    return "a short text, e.g. ReturnAnswer('the red mug')"


# --- answers ---------------------------------------------------------------------------------------

@dataclass
class Answer:
    """An accepted answer: ``value`` in SI units (degrees for angles) with ``unit``, or the option letter
    ``choice``, or ``boolean``; ``text`` is a readable rendering ("2.30 m", "B. the mug", "yes")."""

    kind: AnswerKind
    text: str
    value: float | None = None
    unit: str = ""
    choice: str | None = None
    boolean: bool | None = None
    points: list[dict] = field(default_factory=list)  # evidence: [{"label", "xyz"}] in the world frame

    def to_dict(self) -> dict:
        """JSON-safe form."""
        data = asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Answer":
        """Inverse of ``to_dict``."""
        return cls(kind=AnswerKind(data["kind"]), text=data["text"], value=data.get("value"),
                   unit=data.get("unit", ""), choice=data.get("choice"), boolean=data.get("boolean"),
                   points=data.get("points", []))


@dataclass
class AnswerVerdict:
    """The result of checking a ReturnAnswer value: accepted with the Answer, or refused with the reason."""

    accepted: bool
    reason: str
    answer: Answer | None


class _Refused(Exception):
    """A value does not fit; the message is the reason shown to the model."""


_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def _format_number(value: float) -> str:
    """Two decimals, or three significant digits below 0.1 ("0.0042")."""
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.1 else f"{value:.3g}"


def _plain(value):
    """Unwrap numpy scalars and 0-d arrays into Python values."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


def _split_number(value) -> tuple[float, str | None]:
    """(number, unit spelling or None) from a number or a string such as "2.3 m" or "230cm"."""
    if isinstance(value, bool):
        raise _Refused(f"expected a number, got the bool {value}")
    if isinstance(value, numbers.Real):
        return float(value), None
    if isinstance(value, str):
        text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", value)
        match = _NUMBER_WITH_UNIT.match(text)
        if match:
            return float(match.group(1)), match.group(2) or None
        if text.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity"):
            return float(text), None
        raise _Refused(f"expected a number, got {value!r}")
    raise _Refused(f"expected a number, got {type(value).__name__}")


def _check_number(spec: QuestionSpec, value, unit: str | None) -> Answer:
    try:
        number, unit_in_value = _split_number(value)
    except _Refused as refused:
        raise _Refused(f"{refused}; give {describe_expected(spec)}") from None
    if not math.isfinite(number):
        raise _Refused(f"the answer must be a finite number, got {number}")
    dimension = MEASURES[spec.measure] if spec.measure else None
    given = _given_unit(unit_in_value, unit, dimension)
    if dimension is None:
        if given is None:
            return Answer(AnswerKind.NUMBER, _format_number(number), value=number)
        si_value, si_unit = _si(number, given), SI_UNITS[given.dimension]
        return Answer(AnswerKind.NUMBER, f"{_format_number(si_value)} {si_unit}", value=si_value, unit=si_unit)
    if given is None:
        if spec.unit_hint is None:
            example = f"ReturnAnswer({_format_number(number)}, unit='{spec.si_unit}')"
            raise _Refused(f"the question asks for {_measure_phrase(spec.measure)}; give the unit, e.g. {example}")
        given = _lookup_unit(spec.unit_hint)
    if given.dimension != dimension:
        raise _Refused(f"the question asks for {_measure_phrase(spec.measure)}, but '{given.symbol}' is a unit of "
                       f"{given.dimension}; use a {dimension} unit such as {_units_of(dimension)}")
    if number < 0 and dimension in _NON_NEGATIVE:
        raise _Refused(f"{_measure_phrase(spec.measure)} cannot be negative (got {_format_number(number)} {given.symbol}); "
                       "give its magnitude")
    display = _lookup_unit(spec.unit_hint) if spec.unit_hint else _UNITS[SI_UNITS[dimension]]
    text = f"{_format_number(number * given.factor / display.factor)} {display.symbol}"
    return Answer(AnswerKind.NUMBER, text, value=_si(number, given), unit=SI_UNITS[dimension])


def _measure_phrase(measure: str) -> str:
    """"a distance (length)", "an area": the measure with its article, and its dimension when that differs."""
    article = "an" if measure[0] in "aeiou" else "a"
    dimension = MEASURES[measure]
    return f"{article} {measure}" + (f" ({dimension})" if dimension != measure else "")


def _si(number: float, unit: _Unit) -> float:
    """``number`` in ``unit`` converted to SI, without float noise such as 2.3000000000000003."""
    return float(f"{number * unit.factor:.12g}")


def _given_unit(in_value: str | None, parameter: str | None, dimension: str | None) -> _Unit | None:
    """The unit from the value's text and/or the unit parameter; they must agree."""
    units = []
    for spelling in (in_value, parameter):
        if spelling is None or not str(spelling).strip():
            continue
        unit = _lookup_unit(str(spelling))
        if unit is None:
            known = _units_of(dimension) if dimension else "m, cm, m^2, m^3, deg, s, m/s"
            raise _Refused(f"unknown unit '{spelling}'; use one of {known}")
        units.append(unit)
    if len(units) == 2 and units[0] != units[1]:
        raise _Refused(f"the value says '{in_value}' but unit='{parameter}'; give the unit once")
    return units[0] if units else None


def _check_count(value, unit: str | None) -> Answer:
    if isinstance(value, str) and value.strip().lower() in _COUNT_WORDS:
        number = float(_COUNT_WORDS[value.strip().lower()])
    else:
        try:
            number, unit_in_value = _split_number(value)
        except _Refused as refused:
            raise _Refused(f"a count must be a non-negative whole number, e.g. ReturnAnswer(3); {refused}") from None
        if unit_in_value or (unit and unit.strip()):
            raise _Refused("a count takes no unit; give just the number, e.g. ReturnAnswer(3)")
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise _Refused(f"a count must be a non-negative whole number, e.g. ReturnAnswer(3); got {value!r}")
    return Answer(AnswerKind.COUNT, str(int(number)), value=int(number))


def _check_yes_no(value) -> Answer:
    if isinstance(value, bool):
        boolean = value
    elif isinstance(value, str) and value.strip().lower().rstrip(".!") in ("yes", "y", "true"):
        boolean = True
    elif isinstance(value, str) and value.strip().lower().rstrip(".!") in ("no", "n", "false"):
        boolean = False
    else:
        raise _Refused(f"this is a yes/no question; answer 'yes' or 'no' (or True/False), got {value!r}")
    return Answer(AnswerKind.YES_NO, "yes" if boolean else "no", boolean=boolean)


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _check_choice(spec: QuestionSpec, value) -> Answer:
    letters = spec.letters
    options = ", ".join(f"{letter}. {text}" for letter, text in zip(letters, spec.choices))
    refuse = f"answer with one option letter ({', '.join(letters)}); the options are: {options}; got {value!r}"
    index = None
    if isinstance(value, str):
        text = value.strip()
        labelled = _LABELLED.match(text)
        if labelled or re.fullmatch(r"[A-Ja-j]", text):
            letter = (labelled.group(1) or labelled.group(2)).upper() if labelled else text.upper()
            rest = labelled.group(3).strip() if labelled else ""
            if letter not in letters:
                raise _Refused(f"there is no option {letter}; {refuse}")
            index = letters.index(letter)
            if rest and _normal(rest) != _normal(spec.choices[index]):
                raise _Refused(f"option {letter} is '{spec.choices[index]}', not '{rest}'; {refuse}")
        else:
            matches = [i for i, choice in enumerate(spec.choices) if _normal(choice) == _normal(text)]
            index = matches[0] if len(matches) == 1 else None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        matches = [i for i, choice in enumerate(spec.choices) if _same_number(choice, float(value))]
        index = matches[0] if len(matches) == 1 else None
    if index is None:
        raise _Refused(refuse)
    return Answer(AnswerKind.CHOICE, f"{letters[index]}. {spec.choices[index]}", choice=letters[index])


def _same_number(option: str, number: float) -> bool:
    try:
        return math.isclose(float(option.strip()), number, rel_tol=1e-9, abs_tol=1e-12)
    except ValueError:
        return False


def check_answer(spec: QuestionSpec, value, unit: str | None = None) -> AnswerVerdict:
    """Accept ``value`` (with ``unit``) as an answer to ``spec``, normalised, or refuse it with a reason."""
    value = _plain(value)
    try:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _Refused(f"the answer is empty; give {describe_expected(spec)}")
        if not isinstance(value, (str, numbers.Real)):
            raise _Refused(f"ReturnAnswer takes one str, int, float or bool, got {type(value).__name__}; "
                           f"give {describe_expected(spec)}")
        if spec.kind is AnswerKind.CHOICE:
            answer = _check_choice(spec, value)
        elif spec.kind is AnswerKind.YES_NO:
            answer = _check_yes_no(value)
        elif spec.kind is AnswerKind.COUNT:
            answer = _check_count(value, unit)
        elif spec.kind is AnswerKind.NUMBER:
            answer = _check_number(spec, value, unit)
        else:
            text = str(value).strip()
            if unit and unit.strip():
                text = f"{text} {unit.strip()}"
            answer = Answer(AnswerKind.TEXT, text)
    except _Refused as refused:
        return AnswerVerdict(False, str(refused), None)
    return AnswerVerdict(True, f"accepted: {answer.text}", answer)
