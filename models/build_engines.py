"""Fill the TensorRT engine cache before the first goal: load the configured perception backends, run each graph once.

Loads ``perception`` from the YAML the node and the CLI read (``--config FILE`` or ``$SPATIALCLAW_CONFIG``) through a
``PerceptionService``, as the node's configure step does: every ONNX graph gets its session (TensorRT builds its
engine into ``perception.onnx.engine_cache_dir``, keyed by GPU, TensorRT version, export and shapes) and runs once at
its profile's shapes. Run again, it finds the engines and only loads them. Prints what each backend runs on.

Usage: python models/build_engines.py --config my_config.yaml      (exit 0: every configured backend loaded)
"""

from __future__ import annotations

import argparse
import sys
import time

from spatialclaw_ros.config import Config, load_config
from spatialclaw_ros.perception.onnx_runtime import RuntimeEnvironment
from spatialclaw_ros.perception.service import BackendStatus, PerceptionService


def build(config: Config, environment: RuntimeEnvironment | None = None) -> list[BackendStatus]:
    """Load and warm the configured backends once (engines built or found), then free them; their report."""
    with PerceptionService(config.perception, environment=environment) as service:
        service.load()
        return service.report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="the YAML of the README's Configuration (default: $SPATIALCLAW_CONFIG)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    start = time.perf_counter()
    try:
        report = build(config)
    except (ImportError, ValueError) as error:
        print(f"build_engines: {error}", file=sys.stderr)
        return 1
    for status in report:
        print(status.line())
    print(f"perception backends loaded and warmed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
