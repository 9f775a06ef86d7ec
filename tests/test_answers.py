"""Question analysis and ReturnAnswer checking, table-driven: what is accepted (and normalised to), and
every reason an answer is refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spatialclaw_ros.answers import (Answer, AnswerKind, QuestionSpec, analyse_question, check_answer,
                                     describe_expected)

K = AnswerKind

# question, choices, expected (kind, choices, measure, unit_hint)
QUESTIONS = [
    ("How far is the mug from the laptop?", (), (K.NUMBER, [], "distance", None)),
    ("What is the distance between the two chairs in meters?", (), (K.NUMBER, [], "distance", "m")),
    ("What is the height of the table in cm?", (), (K.NUMBER, [], "height", "cm")),
    ("How tall is the shelf?", (), (K.NUMBER, [], "height", None)),
    ("How wide is the door?", (), (K.NUMBER, [], "width", None)),
    ("How deep is the drawer?", (), (K.NUMBER, [], "depth", None)),
    ("How long is the hallway?", (), (K.NUMBER, [], "length", None)),
    ("What is the length of the longest dimension (length, width, or height) of the table, measured in "
     "centimeters?", (), (K.NUMBER, [], "length", "cm")),
    ("What is the size of this room (in square meters)?", (), (K.NUMBER, [], "area", "m^2")),
    ("What is the area of the rug?", (), (K.NUMBER, [], "area", None)),
    ("What is the volume of the box in liters?", (), (K.NUMBER, [], "volume", "L")),
    ("What angle did the camera rotate by?", (), (K.NUMBER, [], "angle", None)),
    ("The robot drove forward. After that, how much did it turn?", (), (K.NUMBER, [], "angle", None)),
    ("By how many degrees did the camera turn?", (), (K.NUMBER, [], "angle", "deg")),
    ("How long did the robot wait at the door?", (), (K.NUMBER, [], "time", None)),
    ("What was the duration of the stop?", (), (K.NUMBER, [], "time", None)),
    ("How many seconds did the door stay open?", (), (K.NUMBER, [], "time", "s")),
    ("How fast was the person walking?", (), (K.NUMBER, [], "speed", None)),
    ("What is the speed of the cart in km/h?", (), (K.NUMBER, [], "speed", "km/h")),
    ("How many meters is the door from the camera?", (), (K.NUMBER, [], "length", "m")),
    ("How many chairs are in the room?", (), (K.COUNT, [], None, None)),
    ("There are chairs around the table. How many?", (), (K.COUNT, [], None, None)),
    ("How many degrees?", (), (K.NUMBER, [], "angle", "deg")),
    ("How many square meters does the rug cover?", (), (K.NUMBER, [], "area", "m^2")),
    ("Is the number of chairs greater than four?", (), (K.YES_NO, [], None, None)),
    ("How many times did the door open?", (), (K.COUNT, [], None, None)),
    ("What is the number of cups on the shelf?", (), (K.COUNT, [], None, None)),
    ("Count the cups on the shelf.", (), (K.COUNT, [], None, None)),
    ("Is the mug on the table?", (), (K.YES_NO, [], None, None)),
    ("Does the robot turn left after the door?", (), (K.YES_NO, [], None, None)),
    ("Is the distance between the mug and the laptop more than 1 m?", (), (K.YES_NO, [], None, None)),
    ("Answer yes or no: the mug is red.", (), (K.YES_NO, [], None, None)),
    ("Is the mug left or right of the laptop?", (), (K.TEXT, [], None, None)),
    ("Which object has the largest height?", (), (K.TEXT, [], None, None)),
    ("What color is the mug?", (), (K.TEXT, [], None, None)),
    ("Which is closer? A. the mug B. the laptop C. the chair", (),
     (K.CHOICE, ["the mug", "the laptop", "the chair"], None, None)),
    ("Which is closer?\n(A) mug\n(B) laptop", (), (K.CHOICE, ["mug", "laptop"], None, None)),
    ("How far is the mug? Options: A) 0.5 m, B) 1.2 m, C) 2.4 m", (),
     (K.CHOICE, ["0.5 m", "1.2 m", "2.4 m"], None, None)),
    ("Which is closer?", ["A. the mug", "B. the laptop"], (K.CHOICE, ["the mug", "the laptop"], None, None)),
    ("Which is closer?", ["mug", "laptop", "chair"], (K.CHOICE, ["mug", "laptop", "chair"], None, None)),
    ("How many chairs?", ["A. 2", "B. 3"], (K.CHOICE, ["2", "3"], None, None)),
    # a unit named anywhere in the question: in parentheses, after "in", after "how many"
    ("How far apart (metres) are the sofa and the table?", (), (K.NUMBER, [], "distance", "m")),
    ("What is the height of the door (m)?", (), (K.NUMBER, [], "height", "m")),
    ("How far is the chair from the wall (in meters)?", (), (K.NUMBER, [], "distance", "m")),
    ("How wide is the table in cm?", (), (K.NUMBER, [], "width", "cm")),
    ("How many centimeters tall is the lamp?", (), (K.NUMBER, [], "length", "cm")),
    ("What is the distance between the chair(s) and the door?", (), (K.NUMBER, [], "distance", None)),
    ("Is the rug in the L-shaped room larger than 4 m^2?", (), (K.YES_NO, [], None, None)),
    ("How far is the chair from the camera in the second image?", (), (K.NUMBER, [], "distance", None)),
    ("What is the height of the table in the unit of meters?", (), (K.NUMBER, [], "height", "m")),
    ("How long did the robot stop in minutes?", (), (K.NUMBER, [], "time", "min")),
    # answer-format instructions
    ("How far is the door from the camera? Do not include units.", (), (K.NUMBER, [], "distance", None, False, True)),
    ("What is the height of the shelf in centimeters? Do not include units.", (),
     (K.NUMBER, [], "height", "cm", False, True)),
    ("What is the ratio of the two widths? Answer with a single number.", (), (K.NUMBER, [], None, None, False, True)),
    ("Question: Which object has the largest height?", (), (K.TEXT, [], None, None)),
    ("Which object is closer to the door? Answer yes or no.", (), (K.YES_NO, [], None, None)),
    ("The mug is left of the laptop. True or false?", (), (K.YES_NO, [], None, None)),
    # options beyond J, numbered options, "Answer 1 or 2"
    ("Which is nearest? " + " ".join(f"{chr(65 + i)}. item{i}" for i in range(12)), (),
     (K.CHOICE, [f"item{i}" for i in range(12)], None, None)),
    ("Which is nearest?", [f"item{i}" for i in range(30)],
     (K.CHOICE, [f"item{i}" for i in range(30)], None, None, True)),
    ("Which is closer? (1) the chair (2) the table Answer 1 or 2.", (),
     (K.CHOICE, ["the chair", "the table"], None, None, True)),
    ("Which is closer?\n1. the chair\n2. the table\nAnswer with 1 or 2.", (),
     (K.CHOICE, ["the chair", "the table"], None, None, True)),
    ("Which is closer?", ["(1) the chair", "(2) the table"], (K.CHOICE, ["the chair", "the table"], None, None, True)),
    ("Which is closer? Answer 1 or 2.", ["the chair", "the table"],
     (K.CHOICE, ["the chair", "the table"], None, None, True)),
    ("Which is closer? Answer 1 or 2.", ["chair", "table", "door"], (K.CHOICE, ["chair", "table", "door"], None, None)),
    ("How many chairs?", ["1", "2"], (K.CHOICE, ["1", "2"], None, None)),
    ("Which image shows the chair closer to the camera? Answer 1 or 2.", (), (K.CHOICE, ["1", "2"], None, None, True)),
    ("The robot did 1. a turn 2. a stop. How far did it drive in total?", (), (K.NUMBER, [], "distance", None)),
]


@pytest.mark.parametrize("question, choices, expected", QUESTIONS, ids=[q[0][:40] for q in QUESTIONS])
def test_analyse_question(question, choices, expected):
    spec = analyse_question(question, choices)
    kind, options, measure, unit_hint, numbered, bare = (*expected, False, False)[:6]
    assert (spec.kind, spec.choices, spec.measure, spec.unit_hint, spec.numbered, spec.bare_number) == (
        kind, options, measure, unit_hint, numbered, bare)
    assert spec.question == question


DISTANCE = analyse_question("How far is the mug from the laptop?")
HEIGHT_CM = analyse_question("What is the height of the table in cm?")
ROOM = analyse_question("What is the size of this room (in square meters)?")
VOLUME = analyse_question("What is the volume of the box?")
TURN = analyse_question("By how many degrees did the camera turn?")
ANGLE = analyse_question("What angle did the camera rotate by?")
WAIT = analyse_question("How long did the robot wait at the door?")
SPEED = analyse_question("How fast was the person walking?")
COUNT = analyse_question("How many chairs are in the room?")
YES_NO = analyse_question("Is the mug on the table?")
CHOICE = analyse_question("Which is closer? A. the mug B. the laptop C. the chair")
NUMERIC_CHOICE = analyse_question("How far is it?", ["A. 0.5", "B. 1.2", "C. 2.4"])
TEXT = analyse_question("What color is the mug?")
PLAIN_NUMBER = QuestionSpec("What is the ratio of the two widths?", [], K.NUMBER, None, None)
APART = analyse_question("How far apart (metres) are the sofa and the table?")
WIDTH_CM = analyse_question("How wide is the table in cm?")
NO_UNITS = analyse_question("How far is the door from the camera? Do not include units.")
NO_UNITS_CM = analyse_question("What is the height of the shelf in centimeters? Do not include units.")
SINGLE_NUMBER = analyse_question("What is the ratio of the two widths? Answer with a single number.")
TWELVE = analyse_question("Which is nearest?", [f"item {chr(97 + i)}" for i in range(12)])
NUMBERED = analyse_question("Which is closer? (1) the chair (2) the table Answer 1 or 2.")
ONE_OR_TWO = analyse_question("Which image shows the chair closer to the camera? Answer 1 or 2.")
YES_NO_OPTIONS = analyse_question("Is the car beneath the cat?\n(A) yes\n(B) no")
METRES_CHOICE = analyse_question("How far is the mug? Options: A) 0.5 m, B) 1.2 m, C) 2.4 m")

# spec, value, unit, expected (text, value, unit, choice, boolean)
ACCEPTED = [
    (DISTANCE, 2.3, "m", ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, 2, "m", ("2.00 m", 2.0, "m", None, None)),
    (DISTANCE, "2.3 m", None, ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, "230cm", None, ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, "2.3 meters", None, ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, "2,300 mm", None, ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, "2.3", "metres", ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, "2.3 m", "m", ("2.30 m", 2.3, "m", None, None)),
    (DISTANCE, 10, "ft", ("3.05 m", 3.048, "m", None, None)),
    (DISTANCE, np.float32(1.5), "m", ("1.50 m", 1.5, "m", None, None)),
    (DISTANCE, np.array(0.04), "m", ("0.04 m", 0.04, "m", None, None)),
    (DISTANCE, 0.0, "m", ("0.00 m", 0.0, "m", None, None)),
    (HEIGHT_CM, 80, None, ("80.00 cm", 0.8, "m", None, None)),
    (HEIGHT_CM, 0.8, "m", ("80.00 cm", 0.8, "m", None, None)),
    (ROOM, 24, None, ("24.00 m^2", 24.0, "m^2", None, None)),
    (ROOM, "24 m²", None, ("24.00 m^2", 24.0, "m^2", None, None)),
    (ROOM, 240000, "cm^2", ("24.00 m^2", 24.0, "m^2", None, None)),
    (VOLUME, 3, "L", ("0.003 m^3", 0.003, "m^3", None, None)),
    (VOLUME, "0.5 cubic meters", None, ("0.50 m^3", 0.5, "m^3", None, None)),
    (TURN, 90, None, ("90.00 deg", 90.0, "deg", None, None)),
    (ANGLE, "90°", None, ("90.00 deg", 90.0, "deg", None, None)),
    (ANGLE, "90 degrees", None, ("90.00 deg", 90.0, "deg", None, None)),
    (ANGLE, math.pi / 2, "rad", ("90.00 deg", 90.0, "deg", None, None)),
    (ANGLE, -45, "deg", ("-45.00 deg", -45.0, "deg", None, None)),
    (WAIT, "1.5 min", None, ("90.00 s", 90.0, "s", None, None)),
    (WAIT, 12, "seconds", ("12.00 s", 12.0, "s", None, None)),
    (SPEED, 3.6, "km/h", ("1.00 m/s", 1.0, "m/s", None, None)),
    (SPEED, "0.5 m/s", None, ("0.50 m/s", 0.5, "m/s", None, None)),
    (PLAIN_NUMBER, 1.25, None, ("1.25", 1.25, "", None, None)),
    (PLAIN_NUMBER, "150 cm", None, ("1.50 m", 1.5, "m", None, None)),
    (COUNT, 3, None, ("3", 3, "", None, None)),
    (COUNT, 0, None, ("0", 0, "", None, None)),
    (COUNT, 3.0, None, ("3", 3, "", None, None)),
    (COUNT, "3", None, ("3", 3, "", None, None)),
    (COUNT, "three", None, ("3", 3, "", None, None)),
    (COUNT, np.int64(7), None, ("7", 7, "", None, None)),
    (YES_NO, True, None, ("yes", None, "", None, True)),
    (YES_NO, False, None, ("no", None, "", None, False)),
    (YES_NO, "Yes.", None, ("yes", None, "", None, True)),
    (YES_NO, "no", None, ("no", None, "", None, False)),
    (YES_NO, "TRUE", None, ("yes", None, "", None, True)),
    (CHOICE, "A", None, ("A. the mug", None, "", "A", None)),
    (CHOICE, "b", None, ("B. the laptop", None, "", "B", None)),
    (CHOICE, "(c)", None, ("C. the chair", None, "", "C", None)),
    (CHOICE, "B)", None, ("B. the laptop", None, "", "B", None)),
    (CHOICE, "A. the mug", None, ("A. the mug", None, "", "A", None)),
    (CHOICE, "C: The Chair", None, ("C. the chair", None, "", "C", None)),
    (CHOICE, "the laptop", None, ("B. the laptop", None, "", "B", None)),
    (CHOICE, "  The  Laptop ", None, ("B. the laptop", None, "", "B", None)),
    (NUMERIC_CHOICE, 1.2, None, ("B. 1.2", 1.2, "", "B", None)),
    (NUMERIC_CHOICE, "2.4", None, ("C. 2.4", 2.4, "", "C", None)),
    (TEXT, "red", None, ("red", None, "", None, None)),
    (TEXT, "  dark blue ", None, ("dark blue", None, "", None, None)),
    # a bare number takes the unit the question names
    (APART, 2.3, None, ("2.30 m", 2.3, "m", None, None)),
    (APART, "2.3", None, ("2.30 m", 2.3, "m", None, None)),
    (APART, "230 cm", None, ("2.30 m", 2.3, "m", None, None)),
    (WIDTH_CM, 80, None, ("80.00 cm", 0.8, "m", None, None)),
    # "Do not include units": the question's unit, else the measure's SI unit
    (NO_UNITS, 2.5, None, ("2.50 m", 2.5, "m", None, None)),
    (NO_UNITS, "250 cm", None, ("2.50 m", 2.5, "m", None, None)),
    (NO_UNITS_CM, 180, None, ("180.00 cm", 1.8, "m", None, None)),
    (SINGLE_NUMBER, 1.5, None, ("1.50", 1.5, "", None, None)),
    (DISTANCE, 1e300, "m", ("1e+300 m", 1e300, "m", None, None)),
    # options beyond J; numbered options carry their number as the value
    (TWELVE, "K", None, ("K. item k", None, "", "K", None)),
    (TWELVE, "l", None, ("L. item l", None, "", "L", None)),
    (NUMBERED, 1, None, ("1. the chair", 1, "", "1", None)),
    (NUMBERED, "2", None, ("2. the table", 2, "", "2", None)),
    (NUMBERED, "(2)", None, ("2. the table", 2, "", "2", None)),
    (NUMBERED, "Option 1", None, ("1. the chair", 1, "", "1", None)),
    (NUMBERED, "the table", None, ("2. the table", 2, "", "2", None)),
    (NUMBERED, np.int64(2), None, ("2. the table", 2, "", "2", None)),
    (ONE_OR_TWO, 1, None, ("1", 1, "", "1", None)),
    (ONE_OR_TWO, "2", None, ("2", 2, "", "2", None)),
    # an option that is a quantity: picked by its number or its quantity, valued in SI
    (METRES_CHOICE, "B", None, ("B. 1.2 m", 1.2, "m", "B", None)),
    (METRES_CHOICE, 1.2, None, ("B. 1.2 m", 1.2, "m", "B", None)),
    (METRES_CHOICE, 240, "cm", ("C. 2.4 m", 2.4, "m", "C", None)),
    # yes/no variants, also as options
    (YES_NO, "Yes, the mug is on the table.", None, ("yes", None, "", None, True)),
    (YES_NO, "no, it is not", None, ("no", None, "", None, False)),
    (YES_NO, "y", None, ("yes", None, "", None, True)),
    (YES_NO, np.bool_(True), None, ("yes", None, "", None, True)),
    (YES_NO_OPTIONS, True, None, ("A. yes", None, "", "A", None)),
    (YES_NO_OPTIONS, "No.", None, ("B. no", None, "", "B", None)),
    (YES_NO_OPTIONS, "(B) no", None, ("B. no", None, "", "B", None)),
    # wrappers benchmarks ask for or models add
    (CHOICE, "`B`", None, ("B. the laptop", None, "", "B", None)),
    (CHOICE, "``C``", None, ("C. the chair", None, "", "C", None)),
    (CHOICE, "<answer>A</answer>", None, ("A. the mug", None, "", "A", None)),
    (CHOICE, "Answer: B", None, ("B. the laptop", None, "", "B", None)),
    (YES_NO, "<answer>no</answer>", None, ("no", None, "", None, False)),
    (APART, "'2.3'", None, ("2.30 m", 2.3, "m", None, None)),
    # a number given as free text keeps its value
    (TEXT, 3.5, None, ("3.5", 3.5, "", None, None)),
    (TEXT, "42", None, ("42", 42.0, "", None, None)),
    (TEXT, 3, "m", ("3 m", 3.0, "m", None, None)),
]


@pytest.mark.parametrize("spec, value, unit, expected", ACCEPTED,
                         ids=[f"{s.kind.value}-{v!r}-{u}" for s, v, u, _ in ACCEPTED])
def test_accepted_answers_are_normalised(spec, value, unit, expected):
    verdict = check_answer(spec, value, unit)
    assert verdict.accepted, verdict.reason
    answer = verdict.answer
    text, number, si_unit, choice, boolean = expected
    assert answer.kind is spec.kind
    assert answer.text == text
    assert verdict.reason == f"accepted: {text}"
    if number is None:
        assert answer.value is None
    else:
        assert answer.value == pytest.approx(number, rel=1e-9, abs=1e-12)
    assert (answer.unit, answer.choice, answer.boolean) == (si_unit, choice, boolean)


# spec, value, unit, words every reason must contain
REFUSED = [
    # a measure without a unit when the question stated none
    (DISTANCE, 2.4, None, ["the question asks for a distance (length) and names no unit; give the unit, "
                           "e.g. ReturnAnswer(2.40, unit='m')"]),
    (DISTANCE, "2.4", None, ["asks for a distance", "give the unit"]),
    (ANGLE, 90, None, ["asks for an angle and names no unit", "unit='deg'"]),
    (WAIT, 12, "", ["asks for a time and names no unit", "unit='s'"]),
    # a unit of the wrong dimension
    (DISTANCE, "90°", None, ["asks for a distance (length)", "'deg' is a unit of angle", "m, cm, mm"]),
    (DISTANCE, 2, "s", ["'s' is a unit of time"]),
    (ROOM, 5, "m", ["asks for an area, but 'm' is a unit of length", "m^2, cm^2"]),
    (TURN, "2 m", None, ["'m' is a unit of length", "deg, rad"]),
    # unknown or conflicting units
    (DISTANCE, 3, "furlongs", ["unknown unit 'furlongs'", "m, cm, mm, km, in, ft, yd"]),
    (DISTANCE, "2.3 m", "cm", ["the value says 'm' but unit='cm'"]),
    # negative magnitudes
    (DISTANCE, -1.5, "m", ["a distance (length) cannot be negative (got -1.50 m); give its magnitude"]),
    (WAIT, "-3 s", None, ["a time cannot be negative"]),
    # NaN and infinities
    (DISTANCE, float("nan"), "m", ["must be a finite number", "nan"]),
    (DISTANCE, "inf", "m", ["must be a finite number", "inf"]),
    (DISTANCE, np.float64("-inf"), "m", ["must be a finite number"]),
    (COUNT, float("inf"), None, ["non-negative whole number"]),
    # not numbers at all
    (DISTANCE, "about two metres", None, ["expected a number", "ReturnAnswer(2.4, unit='m')"]),
    (DISTANCE, True, "m", ["expected a number, got the bool True"]),
    # counts
    (COUNT, 2.5, None, ["non-negative whole number", "2.5"]),
    (COUNT, -1, None, ["non-negative whole number", "-1"]),
    (COUNT, "3 chairs", None, ["a count takes no unit"]),
    (COUNT, 3, "m", ["a count takes no unit"]),
    (COUNT, "several", None, ["non-negative whole number", "'several'"]),
    (COUNT, False, None, ["non-negative whole number", "bool"]),
    # choices outside the options
    (CHOICE, "D", None, ["there is no option D", "A. the mug, B. the laptop, C. the chair"]),
    (CHOICE, "the table", None, ["one option letter (A, B, C)", "A. the mug, B. the laptop, C. the chair"]),
    (CHOICE, "B. the mug", None, ["option B is 'the laptop', not 'the mug'"]),
    (CHOICE, 2, None, ["one option letter", "got 2"]),
    (NUMERIC_CHOICE, 1.3, None, ["A. 0.5, B. 1.2, C. 2.4"]),
    (CHOICE, True, None, ["one option letter"]),
    # yes/no answered with something else
    (YES_NO, "maybe", None, ["yes/no question", "'maybe'"]),
    (YES_NO, 1, None, ["yes/no question", "got 1"]),
    (YES_NO, "the mug", None, ["yes/no question"]),
    # empty answers and wrong types
    (DISTANCE, None, None, ["the answer is empty", "ReturnAnswer(2.4, unit='m')"]),
    (TEXT, "", None, ["the answer is empty"]),
    (YES_NO, "   ", None, ["the answer is empty", "yes or no"]),
    (CHOICE, "", None, ["the answer is empty", "option letter"]),
    (COUNT, [1, 2], None, ["takes one str, int, float or bool, got list"]),
    (TEXT, {"a": 1}, None, ["got dict"]),
    # not finite once converted to SI (or to the unit the question names)
    (DISTANCE, 1e308, "km", ["1e+308 km converts to inf, not a finite number"]),
    (HEIGHT_CM, 1e307, "m", ["1e+307 m converts to inf, not a finite number"]),
    (ROOM, 1e303, "km^2", ["converts to inf"]),
    (TEXT, 1e308, "km", ["converts to inf"]),
    (TEXT, float("inf"), None, ["must be a finite number, got inf", "short text"]),
    (NO_UNITS, float("nan"), None, ["must be a finite number, got nan"]),
    # "Do not include units" does not excuse the wrong kind of unit
    (NO_UNITS, 2, "s", ["'s' is a unit of time"]),
    (SINGLE_NUMBER, "about two", None, ["expected a number"]),
    # options outside the labels
    (TWELVE, "M", None, ["there is no option M", "(A, B, C, D, E, F, G, H, I, J, K, L)"]),
    (NUMBERED, 3, None, ["there is no option 3", "one option number (1, 2)", "1. the chair, 2. the table"]),
    (NUMBERED, "A", None, ["there is no option A", "one option number (1, 2)"]),
    (NUMBERED, "the sofa", None, ["one option number (1, 2)"]),
    (ONE_OR_TWO, 3, None, ["there is no option 3", "(1, 2)"]),
    (METRES_CHOICE, 1.2, "s", ["one option letter"]),
    (CHOICE, "`E`", None, ["there is no option E"]),
    # yes/no that says both or neither
    (YES_NO, "yes and no", None, ["yes/no question"]),
    (YES_NO, "n/a", None, ["yes/no question"]),
    (YES_NO, "Yesterday", None, ["yes/no question"]),
    (YES_NO_OPTIONS, "maybe", None, ["one option letter (A, B)"]),
    (CHOICE, "``", None, ["the answer is empty"]),
]


@pytest.mark.parametrize("spec, value, unit, words", REFUSED,
                         ids=[f"{s.kind.value}-{v!r}-{u}" for s, v, u, _ in REFUSED])
def test_refused_answers_say_why(spec, value, unit, words):
    verdict = check_answer(spec, value, unit)
    assert not verdict.accepted
    assert verdict.answer is None
    for word in words:
        assert word in verdict.reason


def test_stated_unit_lets_a_bare_number_through_and_renders_in_it():
    spec = analyse_question("What is the length of the sofa, measured in centimeters?")
    verdict = check_answer(spec, 215)
    assert verdict.accepted and verdict.answer.value == pytest.approx(2.15) and verdict.answer.unit == "m"
    assert verdict.answer.text == "215.00 cm"


def test_answer_dict_round_trips_through_json():
    for spec, value, unit in [(DISTANCE, "230cm", None), (CHOICE, "B", None), (YES_NO, False, None),
                              (COUNT, 4, None), (TEXT, "red", None), (NUMBERED, 2, None), (TEXT, 3.5, None)]:
        answer = check_answer(spec, value, unit).answer
        data = json.loads(json.dumps(answer.to_dict(), allow_nan=False))
        assert data["kind"] == spec.kind.value
        assert Answer.from_dict(data) == answer


@pytest.mark.parametrize("spec", [DISTANCE, HEIGHT_CM, ROOM, TURN, WAIT, SPEED, COUNT, NO_UNITS, SINGLE_NUMBER, TEXT,
                                  NUMERIC_CHOICE, METRES_CHOICE])
def test_no_accepted_answer_holds_a_non_finite_number(spec):
    """However large the number and whatever its unit, an accepted answer is finite and strict JSON."""
    for number in (1e300, 1e306, 1e307, 1.7e308, -1e308, 1e-320):
        for unit in (None, "m", "mm", "km", "cm^2", "km^3", "deg", "rad", "h", "km/h", "mph"):
            verdict = check_answer(spec, number, unit)
            if verdict.accepted:
                assert verdict.answer.value is None or math.isfinite(verdict.answer.value), (number, unit)
                json.dumps(verdict.answer.to_dict(), allow_nan=False)
            else:
                assert "nan" not in verdict.reason.split() and verdict.reason


@pytest.mark.parametrize("spec, expected", [
    (DISTANCE, "the distance as a number with its unit, e.g. ReturnAnswer(2.4, unit='m')"),
    (HEIGHT_CM, "the height as a number, taken in cm unless you give a unit, e.g. ReturnAnswer(2.4)"),
    (CHOICE, "one option letter, e.g. ReturnAnswer('A') (options: A. the mug; B. the laptop; C. the chair)"),
    (COUNT, "a non-negative whole number, e.g. ReturnAnswer(3)"),
    (YES_NO, "yes or no, e.g. ReturnAnswer('yes') or ReturnAnswer(False)"),
    (TEXT, "a short text, e.g. ReturnAnswer('the red mug')"),
    (APART, "the distance as a number, taken in m unless you give a unit, e.g. ReturnAnswer(2.4)"),
    (NO_UNITS, "the distance as a number, taken in m unless you give a unit, e.g. ReturnAnswer(2.4)"),
    (NUMBERED, "one option number, e.g. ReturnAnswer(1) (options: 1. the chair; 2. the table)"),
    (ONE_OR_TWO, "one option number, e.g. ReturnAnswer(1) (options: 1; 2)"),
])
def test_describe_expected(spec, expected):
    assert describe_expected(spec) == expected


def test_a_verdict_quotes_a_prefix_of_a_huge_value():
    huge = "x" * 5_000_000
    refused = check_answer(analyse_question("How many chairs are there?"), huge)
    accepted = check_answer(analyse_question("What colour is the sofa?"), huge)
    assert not refused.accepted and len(refused.reason) < 600 and "(5000002 characters)" in refused.reason
    assert accepted.accepted and accepted.answer.text == huge
    assert accepted.reason == f"accepted: {'x' * 200}... (5000000 characters)"
