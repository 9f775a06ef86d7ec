"""Answers as the benchmarks phrase them: each benchmark's prompt, built as its own evaluation code builds it
(format instructions quoted verbatim), what a model answers in that format (accepted, with the right option,
value and unit) and answers that do not fit (refused, with a reason the model can act on).

Where each template comes from (the format strings below are copied from these files):
- VSI-Bench: github.com/vision-x-nyu/thinking-in-space, lmms_eval/tasks/vsibench/utils.py
  (``vsibench_doc_to_text``: pre-prompt, question, "Options:" + options, post-prompt joined by newlines) and
  vsibench.yaml (``mca_post_prompt``, ``na_post_prompt``, and the gpt4v/gemini_api ``na_post_prompt``);
  VLMEvalKit vlmeval/dataset/vsibench.py (``OFFICAL_VQA_POST_PROMPT``). Questions follow VSI-Bench's question
  templates (object_abs_distance, object_size_estimation, room_size_estimation, object_counting,
  object_rel_distance).
- MMSI-Bench: github.com/InternRobotics/MMSI-Bench README.md "Answer Extraction" (``post_prompt``);
  VLMEvalKit vlmeval/dataset/mmsibench.py ``build_prompt`` ("Options: " + "A: item, " per option). The question
  text is illustrative (MMSI questions are hand-written); the options layout and suffix are the benchmark's.
- SPBench: github.com/ZJU-REAL/SpatialLadder, eval_spld/data_utils/vsi_utils.py ``PROMPT_TEMPLATES`` (default
  and thinking) and eval_spld/data_utils/spbench.py (options joined under "Options:"); the same strings in
  VLMEvalKit vlmeval/dataset/spbench.py.
- ViewSpatial-Bench: github.com/ZJU-REAL/ViewSpatial-Bench, evaluate.py (``question + choices + prompt_format``)
  with items from eval/ViewSpatial-Bench.json; lmms-eval lmms_eval/tasks/viewspatial/utils.py
  (``viewspatial_doc_to_text``: "Question: ...\\nChoices: ...\\n" + post-prompt).
- CV-Bench: lmms-eval lmms_eval/tasks/cv_bench/_default_template_yaml (``pre_prompt``) and utils.py
  (``cv_bench_doc_to_text``: pre-prompt + "\\n" + the dataset's ``prompt`` field); prompt fields as in
  huggingface.co/datasets/nyu-visionx/CV-Bench (3D relative depth, 2D count); SpatialLadder
  eval_spld/data_utils/cvbench.py (``mca_post_prompt``).
- BLINK: github.com/zeyofu/BLINK_Benchmark eval/test_benchmark.py (the dataset's ``prompt`` field is sent as is;
  Relative_Depth prompt as in the BLINK val split; Spatial_Relation options "(A) yes" / "(B) no" as in
  eval/saved_outputs/GPT4Turbo/Spatial_Relation.json); lmms-eval lmms_eval/tasks/blink/_default_template_yaml
  (``pre_prompt``).
- ERQA: lmms-eval lmms_eval/tasks/erqa/utils.py (``erqa_doc_to_text`` sends the dataset's question, which carries
  its own "Choices:" and instruction; tests/test_erqa_utils.py shows "Choices: A. yes B. no"); the sample
  question is ERQA's as quoted in the Vlaser paper (arXiv 2510.11027, Table 9, "Example #1 from ERQA").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pytest

from spatialclaw_ros.agent.prompts import tool_reference
from spatialclaw_ros.answers import AnswerKind, analyse_question, check_answer

K = AnswerKind

# --- the benchmarks' format strings, verbatim ------------------------------------------------------
VSI_PRE = "These are frames of a video."
VSI_MCA_POST = "Answer with the option's letter from the given choices directly."
VSI_NA_POST = "Please answer the question using a single word or phrase."
VSI_NA_POST_API = "Do not response anything other than a single number!"
VSI_NA_POST_VLMEVALKIT = "Answer briefly and directly in one float number."
MMSI_POST = "\nAnswer with the option's letter from the given choices directly. Enclose the option's letter within ``."
SPBENCH_PRE = "Question: {question}\n"
SPBENCH_MCA_POST = "Please answer with the option's letter from the given choices (e.g., A, B, etc.) directly."
SPBENCH_NA_POST = "Please answer the question using a numerical value (e.g., 42 or 3.1) directly."
SPBENCH_NA_POST_THINKING = ("Please provide your detailed reasoning between the <think> </think> tags, "
                            "and then answer the question with a numerical value (e.g., 42 or 3.1) within the "
                            "<answer> </answer> tags.")
VIEWSPATIAL_POST = "\nReply only to the corresponding option.\nAnswer:"
VIEWSPATIAL_LMMS = "Question: {question}\nChoices: {choices}\nReply only to the corresponding option.\nAnswer:"
LMMS_LETTERS_PRE = "Note: You only need to respond with {} without providing any additional information.\n"
SPATIALLADDER_CV_POST = "Please answer with the option's letter from the given choices directly."
BLINK_SELECT = "Select from the following choices."
ERQA_POST = "Please answer directly with only the letter of the correct option and nothing else."


def vsi(question: str, options: list[str] | None = None, post: str | None = None) -> str:
    """``vsibench_doc_to_text``: NA questions get the NA post-prompt, MCA questions "Options:" and theirs."""
    if options is None:
        return VSI_PRE + "\n" + question + "\n" + (post or VSI_NA_POST)
    return "\n".join([VSI_PRE, question, "Options:\n" + "\n".join(options), VSI_MCA_POST])


def mmsi(question: str, options: list[str]) -> str:
    """VLMEvalKit ``MMSIBench.build_prompt`` with the MMSI-Bench post-prompt."""
    listed = "Options: " + "".join(f"{chr(65 + i)}: {option}, " for i, option in enumerate(options))
    return f"{question}\n{listed}{MMSI_POST}"


def spbench(question: str, post: str, options: list[str] | None = None) -> str:
    """SpatialLadder ``evaluate_spbench``: options under "Options:", then the template's post-prompt."""
    if options:
        question += "\nOptions:\n" + "\n".join(options)
    return SPBENCH_PRE.format(question=question) + "\n" + post


def lmms_letters(prompt: str, count: int, separator: str = "") -> str:
    """lmms-eval BLINK / CV-Bench: the pre-prompt naming the letters, then the dataset's prompt."""
    return LMMS_LETTERS_PRE.format(", ".join(chr(65 + i) for i in range(count))) + separator + prompt


@dataclass
class Case:
    """One benchmark prompt: what it must parse to, answers accepted as (value, unit, text, number, unit) and
    answers refused as (value, unit, words the reason contains)."""

    benchmark: str
    prompt: str
    kind: AnswerKind
    options: list[str] = field(default_factory=list)
    accepted: list[tuple] = field(default_factory=list)
    refused: list[tuple] = field(default_factory=list)


ABS_DISTANCE = ("Measuring from the closest point of each object, what is the distance between the sofa and the "
                "stove (in meters)?")
REL_DISTANCE = ("Measuring from the closest point of each object, which of these objects (table, sofa, stool, "
                "chair) is the closest to the dishwasher?")
CV_DEPTH = ("Which object is closer to the camera taking this photo, the table (highlighted by a red box) or the "
            "bookcase (highlighted by a blue box)?\n(A) table\n(B) bookcase")
CV_COUNT = "How many trains are in the image? Select from the following choices.\n(A) 1\n(B) 2\n(C) 3\n(D) 4"
BLINK_DEPTH = ("Two points are circled on the image, labeled by A and B beside each circle. Which point is closer "
               f"to the camera?\n{BLINK_SELECT}\n(A) A is closer\n(B) B is closer")
ERQA_QUESTION = ("What happened between these two frames? Choices: A. Robot arm lifted the cup. B. Robot arm poured "
                 "all the nuts into a cup. C. Robot arm poured some of the nuts into a cup. D. Nothing happened. "
                 + ERQA_POST)
ERQA_OPTIONS = ["Robot arm lifted the cup.", "Robot arm poured all the nuts into a cup.",
                "Robot arm poured some of the nuts into a cup.", "Nothing happened."]
VIEWSPATIAL_CHOICES = "A. right\nB. front-up\nC. back-left\nD. front"

CASES = [
    Case("VSI-Bench abs distance", vsi(ABS_DISTANCE), K.NUMBER,
         accepted=[(2.3, None, "2.30 m", 2.3, "m"), ("2.3", None, "2.30 m", 2.3, "m"),
                   ("2.3 meters", None, "2.30 m", 2.3, "m"), ("230 cm", None, "2.30 m", 2.3, "m"),
                   (7.5, "ft", "2.29 m", 2.286, "m")],
         refused=[("about two meters", None, ["expected a number", "taken in m"]),
                  (-2.3, None, ["cannot be negative"]), ("2.3 s", None, ["'s' is a unit of time"]),
                  (1e308, "km", ["converts to inf, not a finite number"]), (float("inf"), None, ["finite"])]),
    Case("VSI-Bench abs distance (API post-prompt)", vsi(ABS_DISTANCE, post=VSI_NA_POST_API), K.NUMBER,
         accepted=[(1.75, None, "1.75 m", 1.75, "m")], refused=[("1.75 apples", None, ["unknown unit 'apples'"])]),
    Case("VSI-Bench abs distance (VLMEvalKit)", vsi(ABS_DISTANCE, post=VSI_NA_POST_VLMEVALKIT), K.NUMBER,
         accepted=[("1.75", None, "1.75 m", 1.75, "m")], refused=[(True, None, ["expected a number"])]),
    Case("VSI-Bench object size", vsi("What is the length of the longest dimension (length, width, or height) of "
                                      "the table, measured in centimeters?"), K.NUMBER,
         accepted=[(180, None, "180.00 cm", 1.8, "m"), ("1.8 m", None, "180.00 cm", 1.8, "m")],
         refused=[(180, "deg", ["'deg' is a unit of angle"])]),
    Case("VSI-Bench room size", vsi("What is the size of this room (in square meters)? If multiple rooms are shown, "
                                    "estimate the size of the combined space."), K.NUMBER,
         accepted=[(24, None, "24.00 m^2", 24.0, "m^2"), ("24 m²", None, "24.00 m^2", 24.0, "m^2")],
         refused=[(24, "m", ["'m' is a unit of length", "m^2"])]),
    Case("VSI-Bench counting", vsi("How many chair(s) are in this room?"), K.COUNT,
         accepted=[(3, None, "3", 3, ""), ("three", None, "3", 3, "")],
         refused=[("3 chairs", None, ["a count takes no unit"]), (2.5, None, ["non-negative whole number"])]),
    Case("VSI-Bench relative distance", vsi(REL_DISTANCE, ["A. table", "B. sofa", "C. stool", "D. chair"]), K.CHOICE,
         ["table", "sofa", "stool", "chair"],
         accepted=[("A", None, "A. table", None, ""), ("A.", None, "A. table", None, ""),
                   ("stool", None, "C. stool", None, "")],
         refused=[("E", None, ["there is no option E", "A. table, B. sofa, C. stool, D. chair"]),
                  (2, None, ["one option letter (A, B, C, D)"]), ("the fridge", None, ["one option letter"])]),
    Case("MMSI-Bench", mmsi("The two images were taken by the same camera. Where is the camera of the second image "
                            "relative to the camera of the first image?", ["left", "right", "front", "back"]),
         K.CHOICE, ["left", "right", "front", "back"],
         accepted=[("`B`", None, "B. right", None, ""), ("``B``", None, "B. right", None, ""),
                   ("B", None, "B. right", None, ""), ("back", None, "D. back", None, "")],
         refused=[("`E`", None, ["there is no option E"]), ("`B` or `C`", None, ["one option letter"])]),
    Case("SPBench single view", spbench(ABS_DISTANCE, SPBENCH_NA_POST), K.NUMBER,
         accepted=[(3.1, None, "3.10 m", 3.1, "m"), ("42", None, "42.00 m", 42.0, "m")],
         refused=[("3.1 m/s", None, ["'m/s' is a unit of speed"])]),
    Case("SPBench thinking", spbench(ABS_DISTANCE, SPBENCH_NA_POST_THINKING), K.NUMBER,
         accepted=[("<answer>3.1</answer>", None, "3.10 m", 3.1, "m")],
         refused=[("<answer></answer>", None, ["the answer is empty"])]),
    Case("SPBench multiple choice", spbench(REL_DISTANCE, SPBENCH_MCA_POST,
                                            ["A. table", "B. sofa", "C. stool", "D. chair"]), K.CHOICE,
         ["table", "sofa", "stool", "chair"],
         accepted=[("D", None, "D. chair", None, ""), ("(D)", None, "D. chair", None, "")],
         refused=[("D. sofa", None, ["option D is 'chair', not 'sofa'"])]),
    Case("ViewSpatial-Bench", "Could you tell me the location of the counter in comparison to the refrigerator?"
         + VIEWSPATIAL_CHOICES + VIEWSPATIAL_POST, K.CHOICE, ["right", "front-up", "back-left", "front"],
         accepted=[("A", None, "A. right", None, ""), ("A. right", None, "A. right", None, ""),
                   ("right", None, "A. right", None, ""), ("front-up", None, "B. front-up", None, "")],
         refused=[("E", None, ["there is no option E"]), ("B. right", None, ["option B is 'front-up', not 'right'"]),
                  ("to the right", None, ["one option letter"])]),
    Case("ViewSpatial-Bench (lmms-eval)", VIEWSPATIAL_LMMS.format(
        question="If you stand at television facing counter, where is sink?",
        choices="A. front\nB. back-left\nC. right\nD. back-right"), K.CHOICE,
         ["front", "back-left", "right", "back-right"],
         accepted=[("D", None, "D. back-right", None, "")], refused=[("behind", None, ["one option letter"])]),
    Case("CV-Bench relative depth", lmms_letters(CV_DEPTH, 2, "\n"), K.CHOICE, ["table", "bookcase"],
         accepted=[("(B)", None, "B. bookcase", None, ""), ("bookcase", None, "B. bookcase", None, "")],
         refused=[("(C)", None, ["there is no option C"]), ("the lamp", None, ["one option letter (A, B)"])]),
    Case("CV-Bench count", lmms_letters(CV_COUNT, 4, "\n"), K.CHOICE, ["1", "2", "3", "4"],
         accepted=[("(B)", None, "B. 2", 2, ""), (2, None, "B. 2", 2, ""), ("2", None, "B. 2", 2, "")],
         refused=[(5, None, ["one option letter (A, B, C, D)"]), ("(E)", None, ["there is no option E"])]),
    Case("CV-Bench (SpatialLadder)", SPBENCH_PRE.format(question=CV_DEPTH) + "\n" + SPATIALLADDER_CV_POST, K.CHOICE,
         ["table", "bookcase"], accepted=[("A", None, "A. table", None, "")], refused=[("C", None, ["no option C"])]),
    Case("BLINK relative depth", lmms_letters(BLINK_DEPTH, 2), K.CHOICE, ["A is closer", "B is closer"],
         accepted=[("(B)", None, "B. B is closer", None, ""), ("B", None, "B. B is closer", None, ""),
                   ("B is closer", None, "B. B is closer", None, ""),
                   ("(A) A is closer", None, "A. A is closer", None, "")],
         refused=[("(C)", None, ["there is no option C"]), ("(A) B is closer", None, ["option A is 'A is closer'"])]),
    Case("BLINK spatial relation", lmms_letters(f"Is the car beneath the cat?\n{BLINK_SELECT}\n(A) yes\n(B) no", 2),
         K.CHOICE, ["yes", "no"],
         accepted=[(True, None, "A. yes", None, ""), ("no", None, "B. no", None, ""),
                   ("(B) no", None, "B. no", None, ""), ("No.", None, "B. no", None, "")],
         refused=[("maybe", None, ["one option letter (A, B)"]), ("yes and no", None, ["one option letter"])]),
    Case("ERQA", ERQA_QUESTION, K.CHOICE, ERQA_OPTIONS,
         accepted=[("C", None, "C. Robot arm poured some of the nuts into a cup.", None, ""),
                   ("D.", None, "D. Nothing happened.", None, ""),
                   ("Nothing happened", None, "D. Nothing happened.", None, "")],
         refused=[("E", None, ["there is no option E"]), ("poured nuts", None, ["one option letter (A, B, C, D)"])]),
    Case("ERQA yes/no", "Is the drawer open? Choices: A. yes B. no " + ERQA_POST, K.CHOICE, ["yes", "no"],
         accepted=[(False, None, "B. no", None, ""), ("A", None, "A. yes", None, "")],
         refused=[(1, None, ["one option letter (A, B)"])]),
]
ACCEPTED = [(case, *answer) for case in CASES for answer in case.accepted]
REFUSED = [(case, *answer) for case in CASES for answer in case.refused]


@pytest.mark.parametrize("case", CASES, ids=[case.benchmark for case in CASES])
def test_benchmark_prompts_parse_to_their_answer_kind_and_options(case):
    spec = analyse_question(case.prompt)
    assert (spec.kind, spec.choices) == (case.kind, case.options)


@pytest.mark.parametrize("case, value, unit, text, number, si_unit", ACCEPTED,
                         ids=[f"{case.benchmark}-{value!r}" for case, value, *_ in ACCEPTED])
def test_answers_in_the_benchmark_format_are_accepted(case, value, unit, text, number, si_unit):
    verdict = check_answer(analyse_question(case.prompt), value, unit)
    assert verdict.accepted, verdict.reason
    answer = verdict.answer
    assert (answer.kind, answer.text, answer.unit) == (case.kind, text, si_unit)
    assert answer.value == (None if number is None else pytest.approx(number))
    if case.kind is K.CHOICE:
        assert answer.choice == text.split(".")[0]
    json.dumps(answer.to_dict(), allow_nan=False)


@pytest.mark.parametrize("case, value, unit, words", REFUSED,
                         ids=[f"{case.benchmark}-{value!r}" for case, value, *_ in REFUSED])
def test_answers_that_do_not_fit_are_refused_with_a_reason(case, value, unit, words):
    verdict = check_answer(analyse_question(case.prompt), value, unit)
    assert not verdict.accepted and verdict.answer is None
    for word in words:
        assert word in verdict.reason


def test_the_prompt_says_a_bare_number_takes_the_unit_the_question_names():
    reference = " ".join(tool_reference().split())
    assert 'a bare number is taken in the unit the question names ("(in meters)", "in cm")' in reference


def test_every_accepted_value_is_finite():
    for case, value, unit, *_ in ACCEPTED:
        answer = check_answer(analyse_question(case.prompt), value, unit).answer
        assert answer.value is None or math.isfinite(answer.value)
