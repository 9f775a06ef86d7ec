"""``spatialclaw eval``: its arguments and what it does (score a benchmark, or generate one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config
from .interfaces import CODE, INTERFACES
from .loaders import BENCHMARKS

EXIT_OK = 0
EXIT_ENDPOINT_FAILED = 3  # the run stopped early at a failing model endpoint; --resume continues it
CACHE_DIR = "images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The eval subcommand's arguments."""
    parser.add_argument("--dataset", metavar="PATH", help="a JSONL benchmark, or the downloaded copy of a public one "
                        "(see --benchmark)")
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="jsonl",
                        help="the layout of --dataset (default: this project's JSONL rows)")
    parser.add_argument("--split", default="", help="split of a benchmark that ships several (BLINK: val)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N rows")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="questions answered at once, each in its own kernel")
    parser.add_argument("--interface", nargs="+", choices=INTERFACES, default=[CODE], metavar="NAME",
                        help=f"action interfaces to compare on the same rows: {', '.join(INTERFACES)} (default code)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out, skipping recorded rows")
    parser.add_argument("--generate", type=int, metavar="N",
                        help="instead: write a generated metric benchmark of N questions into --out")
    parser.add_argument("--out", metavar="DIR", required=True, help="where results, sessions and reports go")


def run(args: argparse.Namespace, config: Config) -> int:
    """Generate a benchmark, or evaluate one and write its report; raises ValueError/OSError on bad input."""
    out = Path(args.out)
    if args.generate is not None:
        from .generate import generate_benchmark

        images, bag = generate_benchmark(args.generate, out)
        print(f"wrote {images} (images with depth and poses) and {bag} (rosbag2 sources)")
        return EXIT_OK
    if not args.dataset:
        raise ValueError("eval needs --dataset (or --generate N)")
    if args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--concurrency and --limit must be at least 1")
    from .loaders import load_benchmark
    from .report import write_report
    from .runner import RESULTS_FILE, Evaluation, read_results

    rows, problems = load_benchmark(args.benchmark, args.dataset, out / CACHE_DIR, args.split)
    if args.limit is not None:
        rows = rows[:args.limit]
    if not rows:
        raise ValueError(f"{args.dataset} holds no usable rows ({len(problems)} skipped)")
    evaluation = Evaluation(config, out, args.interface, concurrency=args.concurrency, max_steps=args.max_steps,
                            deadline_s=args.deadline)
    outcome = evaluation.run(rows, problems, resume=args.resume)
    ids = {row.id for row in rows}
    records = [r for r in read_results(out / RESULTS_FILE) if r["id"] in ids and r["interface"] in args.interface]
    note = (f"{len(records)} results for {len(rows)} rows x {len(args.interface)} interfaces from {args.dataset} "
            f"({args.benchmark}); model {config.model.model or '(endpoint default)'} at {config.model.base_url}.")
    summary, page = write_report(out, records, outcome.bad_rows, note=note, order=args.interface)
    print(summary.read_text(encoding="utf-8").split("## Cost")[0].strip())
    print(f"report: {page}; summary: {summary}", file=sys.stderr)
    if outcome.stopped_early:
        print(f"spatialclaw: the run stopped early: {outcome.stopped_early}", file=sys.stderr)
        return EXIT_ENDPOINT_FAILED
    return EXIT_OK
