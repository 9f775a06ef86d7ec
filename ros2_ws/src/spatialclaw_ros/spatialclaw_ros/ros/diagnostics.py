"""The node's /diagnostics: its lifecycle state, input rates and buffer fill per camera, TF age and rate (from
tf2's own frame table), model endpoint health, goals, each kernel sandbox layer and each perception backend.

The ``*_status`` builders are ROS-free (plain ``Status`` values); ``diagnostic_array`` builds the
diagnostic_msgs/DiagnosticArray with rclpy's classes. diagnostic_msgs ships with every ROS 2 install and
as the ``ros-jazzy-diagnostic-msgs`` wheel; without it the node runs and logs that /diagnostics is off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..config import BufferConfig
from ..frame_buffer import CameraStats
from ..perception.service import BackendStatus

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
#: A camera whose newest image is older than this many of its frame periods (and 1 s) is stale.
STALE_PERIODS = 3.0
HARDWARE_ID = "spatialclaw"


@dataclass(frozen=True)
class Status:
    """One diagnostic status: ``name``, level (OK/WARN/ERROR), one-line message and key/value details."""

    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class GoalStats:
    """Goals served so far."""

    active: int = 0
    finished: int = 0
    succeeded: int = 0
    last_code: str = ""
    last_latency_s: float | None = None


@dataclass(frozen=True)
class EndpointHealth:
    """The last model endpoint check: ok, what it said, when (monotonic) and how long it took."""

    ok: bool | None  # None = not checked yet
    message: str
    checked_at: float | None = None
    latency_s: float | None = None


class EndpointMonitor:
    """Checks the model endpoint every ``period_s`` on its own thread (never on the executor)."""

    def __init__(self, ping: Callable[[], Sequence[str]], period_s: float) -> None:
        self._ping = ping
        self._period_s = period_s
        self._health = EndpointHealth(None, "not checked yet")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="endpoint-monitor", daemon=True)
        self._thread.start()

    @property
    def health(self) -> EndpointHealth:
        """The latest check."""
        with self._lock:
            return self._health

    def set_ping(self, ping: Callable[[], Sequence[str]]) -> None:
        """Check another endpoint from now on (the model settings changed)."""
        with self._lock:
            self._ping = ping

    def _run(self) -> None:
        while True:
            with self._lock:
                ping = self._ping
            started = time.monotonic()
            try:
                models = list(ping())
                health = EndpointHealth(True, f"reachable; models: {', '.join(models[:3]) or 'none listed'}")
            except Exception as error:  # any failure is the endpoint's state to report, not the node's crash
                health = EndpointHealth(False, f"{type(error).__name__}: {error}")
            health = EndpointHealth(health.ok, health.message, time.monotonic(), time.monotonic() - started)
            with self._lock:
                self._health = health
            if self._stop.wait(self._period_s):
                return

    def stop(self) -> None:
        """End the checks (waits for one in progress)."""
        self._stop.set()
        self._thread.join()


def _stale(age: float | None, rate_hz: float) -> bool:
    """Older than STALE_PERIODS periods of its stream and 1 s."""
    return age is not None and rate_hz > 0 and age > max(1.0, STALE_PERIODS / rate_hz)


def camera_status(stats: CameraStats, limits: BufferConfig, topics: dict[str, str], now_s: float) -> Status:
    """Rates, fill and age of one camera; WARN when it is silent, stale, uncalibrated or its depth never pairs."""
    problems = []
    age = None if stats.newest_s is None else now_s - stats.newest_s
    if stats.colour_received == 0:
        problems.append(f"no images on {topics['image']}")
    elif _stale(age, stats.colour_rate_hz):
        problems.append(f"stale: newest image {age:.1f} s old")
    if not stats.has_intrinsics:
        problems.append(f"no CameraInfo on {topics['info']}")
    if topics["depth"] and stats.stored and not stats.with_depth:
        problems.append(f"no depth paired from {topics['depth']}")
    if stats.depth_size_mismatches:
        problems.append(f"{stats.depth_size_mismatches} depth images of another size than the colour image")
    if stats.without_frame_id:
        problems.append(f"{stats.without_frame_id} images without a frame_id (and no CameraInfo naming one)")
    message = "; ".join(problems) or (f"{stats.colour_rate_hz:.1f} Hz, {stats.stored}/{limits.max_frames} frames "
                                      f"buffered ({stats.with_depth} with depth)")
    values = {
        "image_topic": topics["image"], "depth_topic": topics["depth"] or "(none)", "info_topic": topics["info"],
        "colour_rate_hz": f"{stats.colour_rate_hz:.2f}", "colour_received": str(stats.colour_received),
        "depth_received": str(stats.depth_received), "info_received": str(stats.info_received),
        "frames_buffered": str(stats.stored), "frames_with_depth": str(stats.with_depth),
        "buffer_fill": f"{stats.stored / limits.max_frames:.2f}", "buffer_mbytes": f"{stats.nbytes / 1e6:.1f}",
        "newest_age_s": "n/a" if age is None else f"{age:.2f}",
        "buffer_span_s": "n/a" if stats.oldest_s is None or stats.newest_s is None
        else f"{stats.newest_s - stats.oldest_s:.2f}",
    }
    return Status(f"{HARDWARE_ID}: camera {stats.name}", WARN if problems else OK, message, values)


def tf_status(frames: dict[str, dict], now_s: float) -> Status:
    """TF freshness from tf2's frame table (``transforms.frame_table``): WARN without transforms or when the newest
    dynamic transform is stale for its rate."""
    dynamic = {name: entry for name, entry in frames.items() if float(entry.get("most_recent_transform", 0)) > 0}
    newest = max((float(entry["most_recent_transform"]) for entry in dynamic.values()), default=None)
    rate = max((float(entry.get("rate", 0)) for entry in dynamic.values()), default=0.0)
    age = None if newest is None else now_s - newest
    if not frames:
        level, message = WARN, "no transforms received on /tf or /tf_static"
    elif _stale(age, rate):
        level, message = WARN, f"stale: newest /tf is {age:.1f} s old"
    else:
        level, message = OK, f"{len(frames)} frames" + ("" if age is None else f", newest /tf {age:.2f} s old")
    values = {"frames": str(len(frames)), "dynamic_frames": str(len(dynamic)), "static_frames": str(len(frames) - len(dynamic)),
              "tf_rate_hz": f"{rate:.2f}", "newest_age_s": "n/a" if age is None else f"{age:.2f}"}
    return Status(f"{HARDWARE_ID}: tf", level, message, values)


def endpoint_status(health: EndpointHealth, base_url: str, now_monotonic: float) -> Status:
    """The model endpoint: OK when the last check listed models, ERROR when it failed, WARN before the first."""
    level = WARN if health.ok is None else OK if health.ok else ERROR
    values = {"base_url": base_url,
              "checked_ago_s": "n/a" if health.checked_at is None else f"{now_monotonic - health.checked_at:.1f}",
              "check_latency_s": "n/a" if health.latency_s is None else f"{health.latency_s:.3f}"}
    return Status(f"{HARDWARE_ID}: model endpoint", level, health.message, values)


def goals_status(goals: GoalStats) -> Status:
    """Goals served, the last one's code and latency."""
    latency = "n/a" if goals.last_latency_s is None else f"{goals.last_latency_s:.2f}"
    message = (f"{goals.active} active, {goals.finished} finished ({goals.succeeded} answered)"
               + (f", last {goals.last_code} in {latency} s" if goals.finished else ""))
    values = {"active": str(goals.active), "finished": str(goals.finished), "succeeded": str(goals.succeeded),
              "last_code": goals.last_code or "n/a", "last_goal_latency_s": latency}
    return Status(f"{HARDWARE_ID}: goals", OK, message, values)


def state_status(state: str) -> Status:
    """The node's lifecycle state: OK when active, WARN otherwise (goals are served only when active)."""
    message = "serving goals" if state == "active" else f"{state}: not serving goals"
    return Status(f"{HARDWARE_ID}: node", OK if state == "active" else WARN, message, {"lifecycle_state": state})


def sandbox_status(layers: Sequence) -> Status:
    """One key per kernel sandbox layer (``KernelPool.sandbox_layers()``: name, active, required, detail); ERROR when a
    required layer is off, WARN when another is, or before any kernel worker has reported."""
    if not layers:
        return Status(f"{HARDWARE_ID}: kernel sandbox", WARN, "no kernel worker has reported its layers yet")
    values = {layer.name: ("active" if layer.active else "OFF") + (f": {layer.detail}" if layer.detail else "")
              for layer in layers}
    missing_required = [layer.name for layer in layers if layer.required and not layer.active]
    missing = [layer.name for layer in layers if not layer.active]
    level = ERROR if missing_required else WARN if missing else OK
    message = (f"required layers off: {', '.join(missing_required)}" if missing_required
               else f"layers off: {', '.join(missing)}" if missing else f"all {len(layers)} layers active")
    return Status(f"{HARDWARE_ID}: kernel sandbox", level, message, values)


def perception_status(backends: Sequence[BackendStatus]) -> Status:
    """The perception backends, where they run and whether their models are loaded (freed while inactive)."""
    values = {backend.kind: f"{backend.name} on {backend.provider}, {'loaded' if backend.loaded else 'not loaded'}"
              + (f"; {backend.detail}" if backend.detail else "") for backend in backends}
    message = "; ".join(f"{backend.kind} {backend.name}" for backend in backends)
    return Status(f"{HARDWARE_ID}: perception", OK, message, values)


def diagnostic_array(statuses: Sequence[Status], stamp):
    """A diagnostic_msgs/DiagnosticArray of ``statuses`` (rclpy classes; ``stamp`` a builtin_interfaces/Time)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from std_msgs.msg import Header

    return DiagnosticArray(header=Header(stamp=stamp), status=[
        DiagnosticStatus(level=bytes([status.level]), name=status.name, message=status.message, hardware_id=HARDWARE_ID,
                         values=[KeyValue(key=key, value=value) for key, value in status.values.items()])
        for status in statuses])
