"""Does a ReturnAnswer value fit the question? Classify the question, then check and normalise answers.

``analyse_question`` reads what kind of answer a question wants (an option, a measurement and its
unit, a count, yes/no or free text); ``check_answer`` accepts a value of that kind, normalised to SI
units (angles in degrees), or refuses it with a reason the model can act on.
"""

from __future__ import annotations

import math
import numbers
import re
import string
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

#: Answer-format instructions that benchmarks add to a question, by what each means for the answer
#: (tests/test_answer_formats.py holds the benchmarks' own templates).
_INSTRUCTIONS = {
    # a number without a unit: taken in the unit the question names, else in the measure's SI unit
    "bare_number": re.compile(
        r"\b(?:do not|don't|never)\s+(?:include|give|add|write|use)\s+(?:any\s+|the\s+)?units?\b"
        r"|\bwithout\s+(?:any\s+|the\s+)?units?\b|\bno units\b"
        r"|\b(?:single|one)\s+(?:float\s+|decimal\s+|integer\s+)?number\b|\bnumerical value\b", re.I),
    "yes_no": re.compile(r"\byes\s*(?:or|/)\s*no\b|\btrue\s*(?:or|/)\s*false\b", re.I),
    # "Answer 1 or 2": the options are numbered; their numbers alone when the text labels none
    "numbered": re.compile(r"\banswer(?:\s+with)?(?:\s+either)?\s+(1(?:\s*,\s*\d+)*,?\s+or\s+\d+)\b", re.I),
}


def _mark_pattern(label: str, bare: bool = True) -> re.Pattern:
    """Option labels in question text: "(A)", and with ``bare`` "A." "A)" "A:"; followed by a space, not in a word."""
    bare_form = rf"|({label})[.):]" if bare else ""
    return re.compile(rf"(?<![\w.'’-])(?:\(({label})\){bare_form})(?=\s)")


_LETTER_MARKS = _mark_pattern("[A-Z]")
# Numbered options need parentheses ("(1) red") unless an instruction such as "Answer 1 or 2" says they are options.
_NUMBER_MARKS = {True: _mark_pattern(r"\d{1,2}"), False: _mark_pattern(r"\d{1,2}", bare=False)}
#: A label at the start of an option or answer: "B", "b.", "(B)", "B) the mug", "option B", "2", "(2) the mug".
_LABEL = re.compile(r"^\s*(?:option\s+)?(?:\(([a-z]|\d{1,2})\)|([a-z]|\d{1,2})(?:[.):](?=\s|$)|$))\s*(.*)$",
                    re.S | re.I)
# An answer instruction after the last option on its line ("D. Nothing happened. Please answer directly ...").
_TRAILING_INSTRUCTION = re.compile(r"\s+(?=(?:Please|Answer|Reply|Respond|Enclose|Note|Select|Choose)\b)")
#: Where a question names the unit of its number: "(metres)", "(m)", "(in square meters)", "in cm", "measured in feet".
_UNITS_OF = r"(?:(?:the\s+)?units?\s+of\s+)?"  # "in (the) unit(s) of"; "in the second image" names no unit
_UNIT_NAMED = re.compile(rf"(?<!\w)\(\s*(?:in\s+)?{_UNITS_OF}({_UNIT_PATTERN})\s*\)"
                         rf"|\bin\s+{_UNITS_OF}({_UNIT_PATTERN})(?=[\s).,;:?!]|$)", re.I)


@dataclass
class QuestionSpec:
    """What a question asks for: options (without their labels), the answer kind, the measure (a key of
    MEASURES) for NUMBER questions, a unit the question itself names, whether the options are numbered
    (1, 2, ... instead of A, B, ...) and whether the prompt asks for a number without units."""

    question: str
    choices: list[str] = field(default_factory=list)
    kind: AnswerKind = AnswerKind.TEXT
    measure: str | None = None
    unit_hint: str | None = None
    numbered: bool = False
    bare_number: bool = False

    @property
    def labels(self) -> list[str]:
        """The option labels, one per choice: A, B, ... or 1, 2, ... when numbered."""
        if self.numbered:
            return [str(i + 1) for i in range(len(self.choices))]
        return list(string.ascii_uppercase[:len(self.choices)])

    @property
    def options(self) -> list[str]:
        """Each option as shown: "B. the laptop", or just "2" for an option that is only its number."""
        return [label if text == label else f"{label}. {text}" for label, text in zip(self.labels, self.choices)]

    @property
    def si_unit(self) -> str | None:
        """The unit a NUMBER answer is normalised to, or None without a measure."""
        return SI_UNITS[MEASURES[self.measure]] if self.measure else None


def _next_label(label: str) -> str:
    return str(int(label) + 1) if label.isdigit() else chr(ord(label) + 1)


def _inline_options(question: str, numbered_instruction: bool) -> tuple[str, list[str], bool]:
    """Split "Which? A. red B. blue" (or "(1) red (2) blue") into the stem, its options and whether they are
    numbered; no options -> (question, [], False)."""
    for marks, first in ((_LETTER_MARKS, "A"), (_NUMBER_MARKS[numbered_instruction], "1")):
        chain, expected = [], first
        for mark in marks.finditer(question):
            if next(label for label in mark.groups() if label) == expected:
                chain.append(mark)
                expected = _next_label(expected)
        if len(chain) >= 2:
            ends = [mark.start() for mark in chain[1:]] + [_last_option_end(question, chain[-1].end())]
            options = [question[mark.end():end].strip().rstrip(",;").strip() for mark, end in zip(chain, ends)]
            return question[:chain[0].start()].strip(), options, first == "1"
    return question, [], False


def _last_option_end(question: str, start: int) -> int:
    """Where the last option ends: at the end of its line, or before an answer instruction on that line."""
    start += len(question[start:]) - len(question[start:].lstrip())
    line_end = question.find("\n", start)
    end = len(question) if line_end < 0 else line_end
    instruction = _TRAILING_INSTRUCTION.search(question, start, end)
    return instruction.start() if instruction else end


def _given_options(choices: Sequence[str]) -> tuple[list[str], bool]:
    """Options given as a list, without labels that match their position ("B. blue", "(2) blue"); they are
    numbered when every one carries its number."""
    texts, numbered = [], []
    for position, choice in enumerate(choices):
        text = str(choice).strip()
        match = _LABEL.match(text)
        label = (match.group(1) or match.group(2)).upper() if match else ""
        at_position = label in (string.ascii_uppercase[position:position + 1], str(position + 1))
        if match and match.group(3).strip() and at_position:
            text = match.group(3).strip()
        texts.append(text)
        numbered.append(label == str(position + 1) and text != str(choice).strip())
    return texts, all(numbered)


def _asked_sentence(question: str) -> str:
    """The sentence that asks (the last one ending in "?", else the whole text), without a "Question:" label."""
    asked = [s for s in re.split(r"(?<=[.?!])\s+", question.strip()) if s.endswith("?")]
    return re.sub(r"^question\s*:\s*", "", asked[-1] if asked else question.strip(), flags=re.I)


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
    """The QuestionSpec of ``question``; options come from ``choices`` or from the text ("A. red B. blue"),
    and the answer-format instructions benchmarks add ("Answer 1 or 2", "Do not include units") count."""
    said = {name: pattern.search(question) for name, pattern in _INSTRUCTIONS.items()}
    numbers = re.findall(r"\d+", said["numbered"].group(1)) if said["numbered"] else []
    numbers = numbers if numbers == [str(n) for n in range(1, len(numbers) + 1)] else []
    if choices:
        stem, (options, numbered) = question, _given_options(choices)
    else:
        stem, options, numbered = _inline_options(question, bool(numbers))
    options = options or numbers
    if options:
        numbered = numbered or len(options) > 26 or len(options) == len(numbers)
        return QuestionSpec(question, options, AnswerKind.CHOICE, numbered=numbered)
    named = _UNIT_NAMED.search(stem)
    hint = _lookup_unit(named.group(1) or named.group(2)) if named else None
    bare = said["bare_number"] is not None
    asked = _asked_sentence(stem).lower()
    words = asked.split()
    if said["yes_no"] or (words and words[0] in _YES_NO_STARTS and " or " not in asked):
        return QuestionSpec(question, [], AnswerKind.YES_NO)
    if re.search(r"\bhow many\b", asked):
        unit = _how_many_unit(asked)
        if unit is None:
            return QuestionSpec(question, [], AnswerKind.COUNT)
        return _number_spec(question, unit.dimension, hint or unit, bare)
    if re.search(r"\b(?:number of|count)\b", asked):
        return QuestionSpec(question, [], AnswerKind.COUNT)
    measure = None if _ASKS_FOR_A_THING.match(asked) else _measure_of(asked)
    if measure or hint or bare:
        return _number_spec(question, measure, hint, bare)
    return QuestionSpec(question, [], AnswerKind.TEXT)


def _number_spec(question: str, measure: str | None, hint: _Unit | None, bare: bool) -> QuestionSpec:
    """A NUMBER spec; a stated unit of another dimension than the measure word wins ("size ... in m^2")."""
    if hint and (measure is None or MEASURES[measure] != hint.dimension):
        measure = hint.dimension
    return QuestionSpec(question, [], AnswerKind.NUMBER, measure, hint.symbol if hint else None, bare_number=bare)


def _bare_unit(spec: QuestionSpec) -> _Unit | None:
    """The unit a bare number is taken in: the one the question names, else the SI unit when the prompt asks
    for numbers without units; None when a bare number is ambiguous."""
    if spec.unit_hint:
        return _lookup_unit(spec.unit_hint)
    return _lookup_unit(spec.si_unit) if spec.bare_number and spec.measure else None


def describe_expected(spec: QuestionSpec) -> str:
    """One line telling the model what ReturnAnswer should be given for ``spec``."""
    if spec.kind is AnswerKind.CHOICE:
        noun, example = ("number", "1") if spec.numbered else ("letter", "'A'")
        return f"one option {noun}, e.g. ReturnAnswer({example}) (options: {'; '.join(spec.options)})"
    if spec.kind is AnswerKind.YES_NO:
        return "yes or no, e.g. ReturnAnswer('yes') or ReturnAnswer(False)"
    if spec.kind is AnswerKind.COUNT:
        return "a non-negative whole number, e.g. ReturnAnswer(3)"
    if spec.kind is AnswerKind.NUMBER and spec.measure:
        bare = _bare_unit(spec)
        if bare:
            return (f"the {spec.measure} as a number, taken in {bare.symbol} unless you give a unit, "
                    "e.g. ReturnAnswer(2.4)")
        return f"the {spec.measure} as a number with its unit, e.g. ReturnAnswer(2.4, unit='{spec.si_unit}')"
    if spec.kind is AnswerKind.NUMBER:
        return "a number, e.g. ReturnAnswer(2.4)"
    return "a short text, e.g. ReturnAnswer('the red mug')"


# --- answers ---------------------------------------------------------------------------------------

@dataclass
class Answer:
    """An accepted answer: ``text`` is a readable rendering ("2.30 m", "B. the mug", "yes"). ``value`` is the
    number whenever the answer is one: in SI units (degrees for angles) with ``unit``, a count, the number a
    chosen option stands for (its label when numbered, else its text), or a number given as free text.
    ``choice`` is the chosen option's label; ``boolean`` the yes/no."""

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


#: Longest quote of a value in a verdict's reason (a refusal or acceptance quotes a prefix, not a 50 MB string).
QUOTE_CHARS = 200


def _shortened(text: str) -> str:
    """``text`` cut to QUOTE_CHARS, with its full length named."""
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(text)} characters)"


_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
#: Wrappers around an answer that benchmarks ask for or models add: `B`, ``B``, "B", <answer>B</answer>, Answer: B.
_WRAPPERS = [re.compile(pattern, re.S | re.I) for pattern in
             (r"^`+(.*?)`+$", r'^"(.*)"$', r"^'(.*)'$", r"^<answer>(.*)</answer>$", r"^answer\s*:\s*(.+)$")]
_YES, _NO = {"yes", "true"}, {"no", "false"}


def _format_number(value: float) -> str:
    """Two decimals; three significant digits below 0.1 ("0.0042") and from a million up ("1.2e+06")."""
    return f"{value:.2f}" if value == 0 or 0.1 <= abs(value) < 1e6 else f"{value:.3g}"


def _plain(value):
    """Unwrap numpy scalars and 0-d arrays into Python values."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


def _unwrap(text: str) -> str:
    """``text`` without the wrappers in _WRAPPERS, however nested."""
    text = text.strip()
    while match := next((m for m in (wrapper.match(text) for wrapper in _WRAPPERS) if m), None):
        text = match.group(1).strip()
    return text


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
        raise _Refused(f"expected a number, got {_shortened(repr(value))}")
    raise _Refused(f"expected a number, got {type(value).__name__}")


def _finite(value: float, given: str) -> float:
    """``value`` when finite; else refused, naming the ``given`` quantity that did not convert."""
    if not math.isfinite(value):
        raise _Refused(f"{given} converts to {value}, not a finite number; give a finite value in a fitting unit")
    return value


def _si(number: float, unit: _Unit) -> float:
    """``number`` in ``unit`` converted to SI, without float noise such as 2.3000000000000003; refused when that
    is not finite (1e308 km)."""
    return _finite(float(f"{number * unit.factor:.12g}"), f"{number:g} {unit.symbol}")


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
    given = given or _bare_unit(spec)
    if given is None:
        example = f"ReturnAnswer({_format_number(number)}, unit='{spec.si_unit}')"
        raise _Refused(f"the question asks for {_measure_phrase(spec.measure)} and names no unit; give the unit, "
                       f"e.g. {example}")
    if given.dimension != dimension:
        raise _Refused(f"the question asks for {_measure_phrase(spec.measure)}, but '{given.symbol}' is a unit of "
                       f"{given.dimension}; use a {dimension} unit such as {_units_of(dimension)}")
    if number < 0 and dimension in _NON_NEGATIVE:
        raise _Refused(f"{_measure_phrase(spec.measure)} cannot be negative "
                       f"(got {_format_number(number)} {given.symbol}); give its magnitude")
    si_value = _si(number, given)
    display = _lookup_unit(spec.unit_hint or SI_UNITS[dimension])
    shown = _finite(number * given.factor / display.factor, f"{number:g} {given.symbol}")
    return Answer(AnswerKind.NUMBER, f"{_format_number(shown)} {display.symbol}", value=si_value,
                  unit=SI_UNITS[dimension])


def _measure_phrase(measure: str) -> str:
    """"a distance (length)", "an area": the measure with its article, and its dimension when that differs."""
    article = "an" if measure[0] in "aeiou" else "a"
    dimension = MEASURES[measure]
    return f"{article} {measure}" + (f" ({dimension})" if dimension != measure else "")


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
        raise _Refused("a count must be a non-negative whole number, e.g. ReturnAnswer(3); "
                       f"got {_shortened(repr(value))}")
    return Answer(AnswerKind.COUNT, str(int(number)), value=int(number))


def _yes_no(value) -> bool | None:
    """True or False for a yes/no answer (True, "Yes.", "no, it is not", "y"); None for anything else."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    if value.strip().lower() in ("y", "n"):
        return value.strip().lower() == "y"
    words = re.findall(r"[a-z]+", value.lower())
    said = {word in _YES for word in words if word in _YES | _NO}
    return said.pop() if words and words[0] in _YES | _NO and len(said) == 1 else None


def _check_yes_no(value) -> Answer:
    boolean = _yes_no(value)
    if boolean is None:
        raise _Refused("this is a yes/no question; answer 'yes' or 'no' (or True/False), "
                       f"got {_shortened(repr(value))}")
    return Answer(AnswerKind.YES_NO, "yes" if boolean else "no", boolean=boolean)


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _quantity(value, unit: str | None = None) -> tuple[float, _Unit | None] | None:
    """The finite number ``value`` is (a number, or text such as "1.2 m" or "3") and the unit it or ``unit``
    names; None for anything else, such as "3 chairs"."""
    try:
        number, spelling = _split_number(value)
        given = _given_unit(spelling, unit, None)
    except _Refused:
        return None
    return (number, given) if math.isfinite(number) else None


def _option_value(label: str, text: str) -> tuple[float | None, str]:
    """(value, unit) a chosen option stands for: its number when numbered, else its text's number (SI)."""
    if label.isdigit():
        return int(label), ""
    quantity = _quantity(text)
    if quantity is None:
        return None, ""
    amount, unit = quantity
    if unit is None:
        return (int(amount) if amount.is_integer() else amount), ""
    return _si(amount, unit), SI_UNITS[unit.dimension]


def _choice_index(spec: QuestionSpec, value, unit: str | None) -> int | None:
    """The option ``value`` picks by label, text, yes/no or number; None when it picks none (or several)."""
    labels, texts = spec.labels, spec.choices
    labelled = _LABEL.match(value) if isinstance(value, str) else None
    label = (labelled.group(1) or labelled.group(2)).upper() if labelled else ""
    rest = labelled.group(3).strip() if labelled else ""
    if spec.numbered and isinstance(value, numbers.Real) and not isinstance(value, bool) and value == int(value):
        label = str(int(value))
    if label in labels:
        index = labels.index(label)
        if rest and _normal(rest) != _normal(texts[index]):
            raise _Refused(f"option {label} is '{texts[index]}', not '{rest}'")
        return index
    boolean = _yes_no(value)
    said = _YES if boolean else _NO
    for found in ([i for i, text in enumerate(texts) if isinstance(value, str) and _normal(text) == _normal(value)],
                  [i for i, text in enumerate(texts) if boolean is not None and _normal(text) in said],
                  _numeric_matches(texts, value, unit)):
        if len(found) == 1:
            return found[0]
    if label and not rest and (spec.numbered or label.isalpha()):
        raise _Refused(f"there is no option {label}")
    return None


def _numeric_matches(texts: list[str], value, unit: str | None) -> list[int]:
    """The options whose number equals ``value`` (compared in SI when both name a unit)."""
    answer = _quantity(value, unit)
    if answer is None:
        return []
    number, given = answer
    matches = []
    for index, quantity in enumerate(map(_quantity, texts)):
        if quantity is None:
            continue
        amount, option_unit = quantity
        if given and option_unit:
            same = given.dimension == option_unit.dimension and math.isclose(
                number * given.factor, amount * option_unit.factor, rel_tol=1e-9, abs_tol=1e-12)
        else:
            same = math.isclose(number, amount, rel_tol=1e-9, abs_tol=1e-12)
        if same:
            matches.append(index)
    return matches


def _check_choice(spec: QuestionSpec, value, unit: str | None) -> Answer:
    noun = "number" if spec.numbered else "letter"
    refuse = (f"answer with one option {noun} ({', '.join(spec.labels)}); the options are: "
              f"{', '.join(spec.options)}; got {_shortened(repr(value))}")
    try:
        index = _choice_index(spec, value, unit)
    except _Refused as refused:
        raise _Refused(f"{refused}; {refuse}") from None
    if index is None:
        raise _Refused(refuse)
    label = spec.labels[index]
    number, number_unit = _option_value(label, spec.choices[index])
    return Answer(AnswerKind.CHOICE, spec.options[index], value=number, unit=number_unit, choice=label)


def _check_text(value, unit: str | None) -> Answer:
    """Free text; a number given as text keeps its value (in SI when a unit is named)."""
    text = f"{str(value).strip()} {unit.strip()}" if unit and unit.strip() else str(value).strip()
    quantity = _quantity(value, unit)
    if quantity is None:
        return Answer(AnswerKind.TEXT, text)
    number, given = quantity
    if given is None:
        return Answer(AnswerKind.TEXT, text, value=value if isinstance(value, numbers.Real) else number)
    return Answer(AnswerKind.TEXT, text, value=_si(number, given), unit=SI_UNITS[given.dimension])


def check_answer(spec: QuestionSpec, value, unit: str | None = None) -> AnswerVerdict:
    """Accept ``value`` (with ``unit``) as an answer to ``spec``, normalised, or refuse it with a reason."""
    value = _plain(value)
    if isinstance(value, str):
        value = _unwrap(value)
    try:
        if value is None or (isinstance(value, str) and not value):
            raise _Refused(f"the answer is empty; give {describe_expected(spec)}")
        if not isinstance(value, (str, numbers.Real)):
            raise _Refused(f"ReturnAnswer takes one str, int, float or bool, got {type(value).__name__}; "
                           f"give {describe_expected(spec)}")
        if not isinstance(value, (str, bool)) and not math.isfinite(value):
            raise _Refused(f"the answer must be a finite number, got {value}; give {describe_expected(spec)}")
        if spec.kind is AnswerKind.CHOICE:
            answer = _check_choice(spec, value, unit)
        elif spec.kind is AnswerKind.YES_NO:
            answer = _check_yes_no(value)
        elif spec.kind is AnswerKind.COUNT:
            answer = _check_count(value, unit)
        elif spec.kind is AnswerKind.NUMBER:
            answer = _check_number(spec, value, unit)
        else:
            answer = _check_text(value, unit)
    except _Refused as refused:
        return AnswerVerdict(False, str(refused), None)
    return AnswerVerdict(True, f"accepted: {_shortened(answer.text)}", answer)
