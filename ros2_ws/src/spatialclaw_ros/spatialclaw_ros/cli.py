"""``spatialclaw``: ask a spatial question about images or a video, run the demo, replay a session, check the setup,
evaluate a model on a benchmark.

Exit codes of ``ask`` and ``demo``: 0 answered; 2 bad input (arguments, unreadable files, configuration);
3 the model endpoint failed; 4 any other failure (deadline, kernel, no acceptable answer, an internal
error); 5 answered, but the session log is incomplete (the answer is printed; ``log_error`` says what
was not written); 130 cancelled with Ctrl-C. ``replay``: 0 when every step matches, 1 otherwise, 2 bad
input. ``doctor``: 0 unless a required part (endpoint, kernel) is missing, then 1. ``eval``: 0 when every row
was tried (skipped bad rows included), 3 when the model endpoint failed midway, 130 on Ctrl-C (``--resume``
continues both), 2 bad input. Every command ends with one line on stderr, never a traceback; ``--json`` output
is strict JSON (non-finite numbers are null, long strings cut, both listed under ``sanitized``).
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .agent import Agent, AgentEvent, AgentResult, ErrorCode
from .agent.result import ANSWERED, CANCELLED
from .cancel import CancelToken
from .config import Config, key_frame_limit, load_config
from .doctor import run_checks
from .frames import Frame, FrameSet
from .replay import replay_session
from .session_log.encoding import bound_text, json_text, loggable_record
from .video import load_video

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_MODEL_FAILURE = 3
EXIT_FAILURE = 4
EXIT_ANSWERED_LOG_INCOMPLETE = 5
EXIT_CANCELLED = 130
JSON_KEYS = ("answer", "value", "unit", "steps", "low_confidence", "session_dir", "status", "error_code",
             "error_message", "log_error")
LINE_MAX_CHARS = 2000  # the stderr summary line
IMAGE_CAMERA = "image"


class BadInput(Exception):
    """Arguments or input files the command cannot use; the message is printed as is."""


def frames_from_images(paths: Sequence[str]) -> FrameSet:
    """One frame per image file, indices 0..n-1 in the order given."""
    frames = []
    for index, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as error:
            raise BadInput(f"cannot read image {path}: {error}") from None
        frames.append(Frame(index=index, rgb=rgb, camera=IMAGE_CAMERA))
    return FrameSet(frames=frames, extra={"sources": [Path(path).name for path in paths]})


def exit_code(result: AgentResult) -> int:
    """The process exit status for an agent result."""
    if result.status == ANSWERED:
        return EXIT_ANSWERED_LOG_INCOMPLETE if result.log_error else EXIT_OK
    if result.status == CANCELLED:
        return EXIT_CANCELLED
    if result.error_code == ErrorCode.INVALID_INPUT:
        return EXIT_BAD_INPUT
    if result.error_code in (ErrorCode.MODEL_UNREACHABLE, ErrorCode.MODEL_ERROR):
        return EXIT_MODEL_FAILURE
    return EXIT_FAILURE


def progress_line(event: AgentEvent) -> str | None:
    """The stderr progress line for an event (None for "done": the result is printed instead)."""
    prefix = f"[{event.elapsed_s:6.1f} s]"
    if event.stage == "planning":
        return f"{prefix} planning"
    if event.stage == "step":
        return f"{prefix} step {event.step}/{event.max_steps} {event.output_summary}"
    if event.stage == "answering":
        return f"{prefix} steps exhausted: asking for a final answer"
    return None


def _config(args: argparse.Namespace) -> Config:
    """The configuration with the command line's overrides (``--out``)."""
    overrides: dict = {"agent": {}}
    if args.out:
        overrides["agent"]["sessions_dir"] = args.out
    try:
        return load_config(args.config, overrides=overrides)
    except (OSError, ValueError) as error:
        raise BadInput(f"bad configuration: {error}") from None


def _load(args: argparse.Namespace):
    """The configuration (with command-line overrides) and the frames of ``ask``."""
    config = _config(args)
    if args.bag:
        from .bag_reader import read_bag

        try:
            frames = read_bag(args.bag, config.frames, cameras=args.camera, at_s=args.at,
                              max_frames=key_frame_limit(config.agent))
        except (OSError, ValueError, LookupError) as error:
            raise BadInput(f"cannot use bag {args.bag}: {error}") from None
    elif args.video:
        try:
            frames = load_video(args.video, key_frame_limit(config.agent))
        except ValueError as error:
            raise BadInput(str(error)) from None
    else:
        frames = frames_from_images(args.images)
    return config, frames


#: How long after a swallowed Ctrl-C it is delivered again (redelivering_interrupts).
REDELIVER_S = 0.01


def _cancel_on_ctrl_c(token: CancelToken):
    """A SIGINT handler: the first Ctrl-C cancels the question (it ends within a second), a second aborts."""
    def handler(signum, frame) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel("interrupted with Ctrl-C")
    return handler


def redelivering_interrupts(hook):
    """An ``sys.unraisablehook`` that sends a KeyboardInterrupt raised where Python cannot propagate it (a
    weakref callback, a finaliser: it would be printed with a traceback and lost) to the main thread again,
    REDELIVER_S later, once the finaliser has returned (and again if it lands in another)."""
    def redeliver(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            timer = threading.Timer(REDELIVER_S, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
        else:
            hook(unraisable)
    return redeliver


def run_question(config, question: str, frames: FrameSet, args: argparse.Namespace, choices=()) -> AgentResult:
    """Answer ``question`` with progress on stderr; Ctrl-C cancels it and still writes the session."""
    token = CancelToken()

    def on_event(event: AgentEvent) -> None:
        line = progress_line(event)
        if line:
            print(line, file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, _cancel_on_ctrl_c(token))
    previous_hook, sys.unraisablehook = sys.unraisablehook, redelivering_interrupts(sys.unraisablehook)
    try:
        with Agent(config) as agent:
            return agent.ask(question, frames, choices=choices, cancel=token, on_event=on_event,
                             max_steps=args.max_steps, deadline_s=args.deadline)
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGINT, previous)


def one_line(text: str) -> str:
    """``text`` on one line (whitespace runs joined), cut to LINE_MAX_CHARS."""
    return bound_text(" ".join(str(text).split()), LINE_MAX_CHARS).replace("\n", " ")


def print_result(result: AgentResult, as_json: bool, **extra) -> int:
    """Print the answer (or one strict JSON object with ``extra`` keys) and the outcome; return the exit status."""
    summary = result.to_dict()
    if as_json:
        print(json_text(loggable_record({**{key: summary[key] for key in JSON_KEYS}, **extra}), ensure_ascii=True))
    elif result.answer is not None:
        print(bound_text(result.answer.text))
    if result.status == ANSWERED:
        note = " (low confidence: from the answer-only call after the steps ran out)" if result.low_confidence else ""
        print(f"answered in {result.steps} steps{note}; session: {result.session_dir}", file=sys.stderr)
    else:
        print(f"spatialclaw: {result.status} ({result.error_code}): {one_line(result.error_message)}; "
              f"session: {result.session_dir}", file=sys.stderr)
    if result.log_error:
        print(f"spatialclaw: {one_line(result.log_error)}", file=sys.stderr)
    return exit_code(result)


def cmd_ask(args: argparse.Namespace) -> int:
    """``spatialclaw ask``: answer the question about the given images, video or bag (``--out-bag``: markers,
    clouds and the answer as a rosbag2 for RViz or Foxglove)."""
    if args.out_bag and not args.bag:
        raise BadInput("--out-bag needs --bag")
    config, frames = _load(args)
    result = run_question(config, args.question, frames, args, args.choices or ())
    if args.out_bag and result.status == ANSWERED:
        from .offline import write_answer_bag

        written = write_answer_bag(args.out_bag, result, frames, args.question, perception=config.perception)
        print(f"answer bag: {written}", file=sys.stderr)
    return print_result(result, args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    """``spatialclaw demo``: the chair-to-table distance in a synthetic living room, against the ground truth."""
    from .demo import living_room_case
    from .llm.scripted_server import ScriptedModelServer

    config = _config(args)
    case = living_room_case()
    with contextlib.ExitStack() as stack:
        if not args.endpoint:
            server = stack.enter_context(ScriptedModelServer(case.script))
            config = replace(config, model=replace(config.model, base_url=server.url))
            print("model: scripted turns standing in for a vision-language model (--endpoint uses yours)",
                  file=sys.stderr)
        print(f"question: {case.question}", file=sys.stderr)
        result = run_question(config, case.question, case.frames, args)
    status = print_result(result, args.json, ground_truth_m=round(case.truth_m, 4))
    if not args.json:
        print(f"ground truth: {case.truth_m:.3f} m", file=sys.stderr)
    return status


def cmd_replay(args: argparse.Namespace) -> int:
    """``spatialclaw replay``: re-run a session's cells and print per step whether they match."""
    try:
        config = load_config(args.config)
        report = replay_session(args.session_dir, config.kernel)
    except (OSError, ValueError, KeyError) as error:
        raise BadInput(f"cannot replay {args.session_dir}: {error}") from None
    for step in report.steps:
        if step.note:
            print(f"step {step.step}: MISMATCH (not re-run: {step.note})")
            continue
        verdict = "match" if step.matches else "MISMATCH"
        output = "same output" if step.output_match else f"different output: {step.replayed_stdout[:80]!r}"
        print(f"step {step.step}: {verdict} (status {step.recorded_status} -> {step.replayed_status}, {output})")
    print(f"{sum(step.matches for step in report.steps)}/{len(report.steps)} steps match")
    return EXIT_OK if report.all_match else EXIT_MISMATCH


def cmd_doctor(args: argparse.Namespace) -> int:
    """``spatialclaw doctor``: print one ok/missing line per check."""
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as error:
        raise BadInput(f"bad configuration: {error}") from None
    checks = run_checks(config)
    for check in checks:
        print(check.line(), flush=True)
    return EXIT_MISMATCH if any(check.required and not check.ok for check in checks) else EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """``spatialclaw eval``: score the endpoint on a benchmark through one or more action interfaces (exit 3 when
    the endpoint failed midway: ``--resume`` continues), or ``--generate`` a metric benchmark."""
    from .evaluation import command

    config = _config(args)
    try:
        return command.run(args, config)
    except (OSError, ValueError, ImportError) as error:
        raise BadInput(f"eval: {error}") from None
    except KeyboardInterrupt:
        print(f"spatialclaw: eval interrupted; finished questions are in {args.out}: --resume continues",
              file=sys.stderr)
        return EXIT_CANCELLED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the ask, replay and doctor subcommands."""
    parser = argparse.ArgumentParser(prog="spatialclaw", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a spatial question about images or a video")
    ask.add_argument("question")
    source = ask.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="IMAGE", help="image files, in time order")
    source.add_argument("--video", metavar="FILE", help="a video file; key frames are sampled evenly")
    source.add_argument("--bag", metavar="BAG", help="a rosbag2 (.mcap or .db3 file, or its directory): images, "
                        "depth, CameraInfo and TF")
    ask.add_argument("--camera", action="append", metavar="TOPIC",
                     help="with --bag: a camera name or image topic to use (repeatable; default all)")
    ask.add_argument("--at", type=float, metavar="SECONDS", help="with --bag: end of the key frames, seconds from the bag start")
    ask.add_argument("--out-bag", metavar="DIR", help="with --bag: write markers, clouds and the answer to this new "
                     "rosbag2 directory (MCAP)")
    ask.add_argument("--choices", nargs="+", metavar="CHOICE", help='answer options, e.g. "A. red" "B. blue"')
    ask.set_defaults(handler=cmd_ask)
    demo = commands.add_parser("demo", help="the chair-to-table distance in a synthetic room, with ground truth")
    demo.add_argument("--endpoint", action="store_true",
                      help="use the configured model endpoint instead of the scripted model")
    demo.set_defaults(handler=cmd_demo)
    for command in (ask, demo):
        command.add_argument("--out", metavar="DIR", help="directory the session directory is created in")
        command.add_argument("--json", action="store_true", help="print the result as one JSON object")
        command.add_argument("--max-steps", type=int, metavar="N")
        command.add_argument("--deadline", type=float, metavar="S", help="wall-clock limit in seconds")
    replay = commands.add_parser("replay", help="re-run a recorded session's cells without a model")
    replay.add_argument("session_dir")
    replay.set_defaults(handler=cmd_replay)
    doctor = commands.add_parser("doctor", help="check the endpoint, kernel sandbox, GPU, perception and ROS")
    doctor.set_defaults(handler=cmd_doctor)
    from .evaluation.command import add_arguments as add_eval_arguments

    evaluate = commands.add_parser("eval", help="score a model on a benchmark (JSONL or a public layout) through "
                                   "one or more action interfaces, or generate a metric benchmark")
    add_eval_arguments(evaluate)
    evaluate.add_argument("--max-steps", type=int, metavar="N")
    evaluate.add_argument("--deadline", type=float, metavar="S", help="wall-clock limit per question in seconds")
    evaluate.set_defaults(handler=cmd_eval)
    for command in (ask, demo, replay, doctor, evaluate):
        command.add_argument("--config", metavar="FILE", help="YAML configuration (default: $SPATIALCLAW_CONFIG)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spatialclaw`` console script: any failure ends with one line on stderr and an exit code."""
    for stream in (sys.stdout, sys.stderr):  # text a cell printed may hold characters the terminal cannot encode
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BadInput as error:
        print(f"spatialclaw: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("spatialclaw: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as error:  # a bug: the agent has logged it in the session; the user gets one line
        print(f"spatialclaw: internal error: {type(error).__name__}: {one_line(str(error))}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
