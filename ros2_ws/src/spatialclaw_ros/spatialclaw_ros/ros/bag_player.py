"""Play a rosbag2 recording (.mcap or .db3) into a live ROS 2 graph with rclpy: ``ros2 bag play`` where
rosbag2_py is missing (e.g. the PyPI wheels).

    python -m spatialclaw_ros.ros.bag_player BAG [--clock] [--rate R] [--loop] [--hold] [--topics T ...]

Messages go out as recorded (serialized CDR, no conversion) at their recorded pace. ``--clock`` publishes
``/clock`` from the bag's time, for nodes run with ``use_sim_time:=true``. ``--loop`` replays forever with
every header stamp (and every TF transform's stamp) shifted to the current wall time, so the stream looks
live to nodes on wall time; each pass starts one message interval of the sparsest stream after the previous
one ended, as if the recording went on (back to back, the last frame of a pass and the first of the next
would carry all but the same stamp, and a node pairing colour, depth and TF by stamp could mix them).
``/tf_static`` is latched (TRANSIENT_LOCAL); ``--hold`` keeps the player (and so the latched messages and
the last clock) alive after the last message until SIGINT/SIGTERM. Prints ``PLAYING <n> topics`` when it
starts and ``FINISHED <n> messages`` after one pass.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from .conversions import seconds_to_stamp_fields

LATCHED_TOPICS = ("/tf_static",)
CLOCK_PERIOD_S = 0.05  # /clock keeps ticking at least this often while waiting for the next message
WAIT_FOR_SUBSCRIBERS_S = 20.0


def _message_class(msgtype: str) -> type:
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _qos(topic: str) -> QoSProfile:
    if topic in LATCHED_TOPICS:
        return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def restamp(msg, offset_s: float) -> None:
    """Shift ``msg.header.stamp`` and, for a TFMessage, every transform's stamp by ``offset_s`` (in place)."""
    headers = [msg.header] if hasattr(msg, "header") else []
    headers += [t.header for t in getattr(msg, "transforms", [])]
    for header in headers:
        seconds = header.stamp.sec + header.stamp.nanosec * 1e-9
        if seconds > 0:
            fields = seconds_to_stamp_fields(seconds + offset_s)
            header.stamp.sec, header.stamp.nanosec = fields["sec"], fields["nanosec"]


class BagPlayer:
    """Publishes one bag's messages on a node; ``play`` runs one pass at ``rate`` times the recorded pace."""

    def __init__(self, node, bag: Path, topics: Sequence[str] | None = None, clock: bool = False) -> None:
        self.node = node
        self.bag = Path(bag)
        self._reader = AnyReader([self.bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        self._reader.open()
        connections = [c for c in self._reader.connections if not topics or c.topic in topics]
        missing = sorted(set(topics or ()) - {c.topic for c in connections})
        if missing:
            raise ValueError(f"{self.bag} has no topic(s) {missing}; it has {sorted({c.topic for c in self._reader.connections})}")
        self._connections = connections
        self._publishers = {}
        for connection in connections:
            if connection.topic not in self._publishers:
                self._publishers[connection.topic] = node.create_publisher(
                    _message_class(connection.msgtype), connection.topic, _qos(connection.topic))
        self._clock = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self._clock = node.create_publisher(Clock, "/clock", 10)
            self._clock_type = Clock
        self.start_s = self._reader.start_time * 1e-9
        self.end_s = self._reader.end_time * 1e-9
        duration = self.end_s - self.start_s
        #: Bag seconds from the start of one --loop pass to the start of the next: the recording and then
        #: one message interval of its sparsest stream (the cameras rather than /tf).
        self.loop_period_s = duration + max((duration / (c.msgcount - 1) for c in connections if c.msgcount > 1),
                                            default=0.0)

    @property
    def topics(self) -> list[str]:
        """The topics this player publishes."""
        return sorted(self._publishers)

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Wait until every topic has a subscriber (or ``timeout_s`` passes); True when all have one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() for p in self._publishers.values()):
                return True
            time.sleep(0.05)
        return False

    def publish_clock(self, bag_time_s: float) -> None:
        """Publish /clock at ``bag_time_s`` (with --clock only)."""
        if self._clock is not None:
            fields = seconds_to_stamp_fields(bag_time_s)
            msg = self._clock_type()
            msg.clock.sec, msg.clock.nanosec = fields["sec"], fields["nanosec"]
            self._clock.publish(msg)

    def _messages(self) -> Iterator[tuple[str, str, float, bytes]]:
        for connection, log_time, raw in self._reader.messages(connections=self._connections):
            yield connection.topic, connection.msgtype, log_time * 1e-9, bytes(raw)

    def play(self, rate: float = 1.0, offset_s: float | None = None) -> int:
        """One pass; with ``offset_s`` every stamp is shifted by it (see ``restamp``). Returns messages sent."""
        wall_start = time.monotonic()
        sent = 0
        for topic, msgtype, bag_time, raw in self._messages():
            if not self.node.context.ok():
                break
            due = wall_start + (bag_time - self.start_s) / rate
            while True:
                left = due - time.monotonic()
                if left <= 0:
                    break
                self.publish_clock(bag_time - left * rate)
                time.sleep(min(left, CLOCK_PERIOD_S))
            self.publish_clock(bag_time)
            if offset_s is not None:
                cls = _message_class(msgtype)
                msg = deserialize_message(raw, cls)
                restamp(msg, offset_s)
                raw = serialize_message(msg)
            self._publishers[topic].publish(raw)
            sent += 1
        return sent

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Play a bag (see the module docstring); extra arguments go to ROS (--ros-args ...)."""
    parser = argparse.ArgumentParser(prog="python -m spatialclaw_ros.ros.bag_player", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="bag directory or .mcap/.db3 file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    parser.add_argument("--clock", action="store_true", help="publish /clock from the bag's time")
    parser.add_argument("--loop", action="store_true", help="replay forever, restamped to the current wall time")
    parser.add_argument("--hold", action="store_true", help="stay alive after the last message until signalled")
    parser.add_argument("--topics", nargs="+", help="only these topics")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long until every topic has a subscriber")
    args, ros_args = parser.parse_known_args(argv)
    if args.rate <= 0:
        parser.error(f"--rate must be positive, got {args.rate}")
    if args.loop and args.clock:
        parser.error("--loop restamps to wall time; it cannot be combined with --clock")
    rclpy.init(args=[sys.argv[0], *ros_args])
    node = rclpy.create_node("bag_player")
    player = None
    try:
        player = BagPlayer(node, args.bag, args.topics, clock=args.clock)
        if args.wait_for_subscribers > 0 and not player.wait_for_subscribers(args.wait_for_subscribers):
            print("bag_player: not every topic has a subscriber; playing anyway", file=sys.stderr, flush=True)
        print(f"PLAYING {len(player.topics)} topics", flush=True)
        first_pass = time.time()
        for passes in itertools.count():
            if passes:  # --loop: the next pass starts when the recording would have gone on
                time.sleep(max(0.0, first_pass + passes * player.loop_period_s / args.rate - time.time()))
            offset = first_pass + passes * player.loop_period_s - player.start_s if args.loop else None
            sent = player.play(args.rate, offset)
            print(f"FINISHED {sent} messages", flush=True)
            if not args.loop or not rclpy.ok():
                break
        while args.hold and rclpy.ok():
            player.publish_clock(player.end_s)
            time.sleep(CLOCK_PERIOD_S * 4)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if player is not None:
            player.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
