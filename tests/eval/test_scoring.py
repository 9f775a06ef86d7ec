"""Scoring against hand-computed values: VSI-Bench's MRA (and its edge cases), letters, units and tolerances."""

import math

import pytest

from spatialclaw_ros.answers import Answer, AnswerKind
from spatialclaw_ros.evaluation.scoring import (
    MRA_THRESHOLDS, BadAnswer, leading_letter, mean_relative_accuracy, read_truth, score_answer,
)


def test_thresholds_are_vsi_bench_s():
    assert MRA_THRESHOLDS == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


@pytest.mark.parametrize("predicted, truth, expected", [
    (2.0, 2.0, 1.0),      # exact
    (1.25, 1.0, 0.6),     # error 0.25 <= 1 - t for t = 0.50 ... 0.75 (boundary included, as VSI-Bench's <=)
    (0.75, 1.0, 0.6),     # the same error from below
    (1.04, 1.0, 1.0),     # 4 % <= 5 %: every threshold
    (1.06, 1.0, 0.9),     # 6 %: all but t = 0.95
    (1.5, 1.0, 0.1),      # 50 %: only t = 0.50
    (1.51, 1.0, 0.0),     # just over 50 %
    (300.0, 2.0, 0.0),    # a huge error
    (-2.0, 2.0, 0.0),     # wrong sign: 200 %
    (-1.12, -1.0, 0.8),   # negative truth compared by magnitude: 12 % passes t = 0.50 ... 0.85
    (1.1, -1.0, 0.0),     # opposite sign of a negative truth: 210 %
    (0.0, 0.0, 1.0),      # zero truth: only an exact zero scores
    (0.01, 0.0, 0.0),
    (None, 2.0, 0.0),     # no prediction
    (math.nan, 2.0, 0.0),
    (math.inf, 2.0, 0.0),
])
def test_mean_relative_accuracy(predicted, truth, expected):
    assert mean_relative_accuracy(predicted, truth) == pytest.approx(expected)


@pytest.mark.parametrize("text, letter", [("B", "B"), ("(C) left", "C"), ("A. chair", "A"), ("**D**", "D"),
                                          ("b", "B"), ("Because the chair", None), ("", None), ("Answer: B", None)])
def test_leading_letter(text, letter):
    assert leading_letter(text) == letter


def test_truth_of_choices_from_list_inline_and_labelled_answers():
    assert read_truth("Which is closer?", ["chair", "table"], "B").letter == "B"
    assert read_truth("Which is closer? A. chair B. table", [], "(B)").letter == "B"
    assert read_truth("Where is the counter?", ["A. right", "B. left"], "A. right").letter == "A"
    assert read_truth("Which is closer?", ["chair", "table"], "table").letter == "B"  # option text
    with pytest.raises(BadAnswer, match="not one of the option labels"):
        read_truth("Which is closer?", ["chair", "table"], "C")


def test_numeric_truth_in_si_with_the_rows_or_the_questions_unit():
    assert read_truth("How long is the sofa (in centimeters)?", [], "150").value == pytest.approx(1.5)
    assert read_truth("How long is the sofa?", [], 150, unit="cm").value == pytest.approx(1.5)
    assert read_truth("How many chairs are there?", [], "3").value == 3
    truth = read_truth("What is the closest distance between the chair and the table, in metres?", [], 0.0,
                       unit="cm", tolerance=2)
    assert truth.value == 0 and truth.tolerance == pytest.approx(0.02)
    with pytest.raises(BadAnswer, match="neither an option letter"):
        read_truth("How many chairs are there?", [], "several")


def number(value_m: float) -> Answer:
    return Answer(AnswerKind.NUMBER, f"{value_m} m", value=value_m, unit="m")


def test_scores_of_answers():
    question = "How long is the sofa, in centimeters?"
    truth = read_truth(question, [], 200)  # 2 m
    assert score_answer(truth, question, [], number(2.5)).value == pytest.approx(0.6)  # error 0.25
    assert score_answer(truth, question, [], None).value == 0.0
    count = read_truth("How many chairs are there?", [], 4)
    assert score_answer(count, "How many chairs are there?", [], Answer(AnswerKind.COUNT, "5")).value == \
        pytest.approx(0.6)  # 25 % off
    choice = read_truth("Which is closer?", ["chair", "table"], "B")
    assert score_answer(choice, "Which is closer?", ["chair", "table"],
                        Answer(AnswerKind.CHOICE, "B. table", choice="B")).value == 1.0
    assert score_answer(choice, "Which is closer?", ["chair", "table"],
                        Answer(AnswerKind.TEXT, "A is closer")).value == 0.0  # "A is..." leads with A


def test_tolerance_makes_a_near_zero_gap_scoreable():
    question = "What is the closest distance between the chair and the table, in metres?"
    truth = read_truth(question, [], 0.0, unit="m", tolerance=0.02)
    assert score_answer(truth, question, [], number(0.015)).value == 1.0
    assert score_answer(truth, question, [], number(0.03)).value == 0.0
