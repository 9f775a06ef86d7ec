"""Node ingest cost: two 640x480 RGB-D cameras at 30 Hz must cost the node at most 25 % of one core, with
no frames dropped beyond the subscription's queue depth.

A publisher process sends, per camera and tick, a raw rgb8 image, a registered 16UC1 depth image and a
CameraInfo, plus /tf (map -> base_link) every tick and /tf_static once, for ``--seconds``. The node runs
launched as the README says, with its default parameters (two cameras, sensor QoS of depth 5, best effort unless
``--reliability``).
Both processes use the shipped Fast DDS profile for large messages (config/fastdds_large_messages.xml;
``--dds-profile none`` for Fast DDS's defaults, under which best-effort 0.9 MB images lose UDP fragments).
The node's CPU time is read from /proc over the publishing window after a warm-up; its received counts come
from /diagnostics and are compared with what was sent. Exits 1 when the CPU target or the drop bound is missed.

Usage (repo root, the ROS venv active): python bench/ingest_cpu.py [--seconds 20] [--rate 30] [--reliability reliable]
"""

from __future__ import annotations

import argparse
import array
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ros"))

from graph_support import (READY_LINE, GraphClient, Process, launch_command, node_process, ros_environment,  # noqa: E402
                           write_yaml)

TARGET_CPU = 0.25
QOS_DEPTH = 5
CAMERAS = ("front", "rear")
WIDTH, HEIGHT = 640, 480
WARMUP_S = 3.0
DDS_PROFILE = ROOT / "ros2_ws" / "src" / "spatialclaw_ros" / "config" / "fastdds_large_messages.xml"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (s), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish(seconds: float, rate: float) -> int:
    """The publisher process: both cameras and TF at ``rate`` Hz for ``seconds``; prints what it sent."""
    import numpy as np
    import rclpy
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

    rclpy.init()
    node = rclpy.create_node("ingest_publisher")
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    tf_pub = node.create_publisher(TFMessage, "/tf", 100)
    static_pub = node.create_publisher(TFMessage, "/tf_static", latched)
    rng = np.random.default_rng(0)
    rgb = array.array("B", rng.integers(0, 255, WIDTH * HEIGHT * 3, dtype=np.uint8).tobytes())
    depth = array.array("B", rng.integers(500, 5000, WIDTH * HEIGHT, dtype=np.uint16).astype("<u2").tobytes())
    k = [500.0, 0.0, WIDTH / 2, 0.0, 500.0, HEIGHT / 2, 0.0, 0.0, 1.0]
    streams = []
    for name in CAMERAS:
        frame = f"{name}_optical_frame"
        streams.append((
            node.create_publisher(Image, f"/{name}/image_raw", 10),
            node.create_publisher(Image, f"/{name}/depth/image_raw", 10),
            node.create_publisher(CameraInfo, f"/{name}/camera_info", 10),
            Image(header=Header(frame_id=frame), height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3, data=rgb),
            Image(header=Header(frame_id=frame), height=HEIGHT, width=WIDTH, encoding="16UC1", step=WIDTH * 2, data=depth),
            CameraInfo(header=Header(frame_id=frame), width=WIDTH, height=HEIGHT, k=k)))
    optical = Quaternion(x=-0.5, y=0.5, z=-0.5, w=0.5)
    static_pub.publish(TFMessage(transforms=[
        TransformStamped(header=Header(frame_id="base_link"), child_frame_id=f"{name}_optical_frame",
                         transform=Transform(translation=Vector3(z=1.0), rotation=optical)) for name in CAMERAS]))
    publishers = [p for stream in streams for p in stream[:3]]
    deadline = time.monotonic() + 30
    while not all(p.get_subscription_count() for p in publishers) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("PUBLISHING", flush=True)
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        now = time.time()
        stamp = Time(sec=int(now), nanosec=int(now % 1 * 1e9))
        tf_pub.publish(TFMessage(transforms=[TransformStamped(
            header=Header(stamp=stamp, frame_id="map"), child_frame_id="base_link",
            transform=Transform(translation=Vector3(x=0.1 * elapsed), rotation=Quaternion(w=1.0)))]))
        for image_pub, depth_pub, info_pub, image, depth_image, info in streams:
            for message in (image, depth_image, info):
                message.header.stamp = stamp
            image_pub.publish(image)
            depth_pub.publish(depth_image)
            info_pub.publish(info)
        sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    print(f"SENT {sent} per stream in {time.monotonic() - start:.2f} s", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--reliability", choices=("best_effort", "reliable"), default="best_effort")
    parser.add_argument("--dds-profile", default=str(DDS_PROFILE), help="Fast DDS XML profile, or 'none'")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)  # the publisher process
    args = parser.parse_args()
    if args.publish:
        return publish(args.seconds, args.rate)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    tmp = Path(tempfile.mkdtemp(prefix="ingest_cpu_"))
    env = ros_environment(96 + os.getpid() % 5)
    if args.dds_profile != "none":
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = args.dds_profile
    os.environ.update(env)
    params = write_yaml(tmp / "params.yaml", {"spatialclaw": {"ros__parameters": {
        "camera_names": list(CAMERAS), "model": {"base_url": "http://127.0.0.1:9/v1"}, "kernel": {"pool_size": 1},
        "agent": {"sessions_dir": str(tmp / "sessions")}, "image_qos": {"reliability": args.reliability}}}})
    node = Process(launch_command(params), env, "launch")
    publisher = None
    context = rclpy.Context()
    try:
        node.wait_for(READY_LINE, 90)
        pid = node_process(node).pid
        time.sleep(5.0)  # let the warm kernel worker finish starting: its CPU is not ingest
        publisher = Process([sys.executable, __file__, "--publish", "--seconds", str(args.seconds), "--rate",
                             str(args.rate)], env, "publisher")
        publisher.wait_for("PUBLISHING", 60)
        time.sleep(WARMUP_S)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        sent_line = publisher.wait_for("SENT", args.seconds + 60)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        time.sleep(1.0)  # the last messages in flight
        rclpy.init(context=context)
        client = GraphClient(context)
        (diagnostics,) = client.collect(DiagnosticArray, "/diagnostics", count=1)
        client.close()
    finally:
        context.try_shutdown()
        for process in (publisher, node):
            if process is not None:
                process.stop()
    sent = int(sent_line.split()[1])
    share = (cpu1 - cpu0) / (t1 - t0)
    ok = share <= TARGET_CPU
    print(f"publisher: {sent_line}; DDS profile: {args.dds_profile}")
    print(f"node CPU while ingesting {len(CAMERAS)} cameras of {WIDTH}x{HEIGHT} RGB-D at {args.rate:g} Hz "
          f"({args.reliability}): "
          f"{100 * share:.1f} % of one core (target <= {100 * TARGET_CPU:.0f} %)")
    for status in diagnostics.status:
        if status.name.startswith("spatialclaw: camera"):
            values = {kv.key: kv.value for kv in status.values}
            colour, depth = int(values["colour_received"]), int(values["depth_received"])
            dropped = max(sent - colour, sent - depth)
            ok &= dropped <= QOS_DEPTH
            print(f"{status.name}: sent {sent} x (rgb, depth), received {colour} rgb and {depth} depth "
                  f"(dropped {dropped}, allowed {QOS_DEPTH}); rate {values['colour_rate_hz']} Hz, "
                  f"{values['frames_buffered']} frames buffered, {values['buffer_mbytes']} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
