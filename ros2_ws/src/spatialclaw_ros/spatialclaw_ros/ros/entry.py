"""``spatialclaw_node``: the node's executable. It imports the node only inside ``main``, so a Ctrl-C that comes
while ROS, the agent and the models are still being imported also ends it quietly, without a traceback."""

from __future__ import annotations

import sys

#: Exit status after Ctrl-C before the node was up (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def main(args=None) -> int:
    """Run the SpatialClaw node (see ``ros/node.py``); Ctrl-C at any moment ends it without a traceback."""
    try:
        from .node import run

        return run(args)
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
