"""The SpatialClaw ROS 2 node: buffers camera frames and TF, answers SpatialQuery goals, shows the answers.

Action ``~/query`` (``/spatialclaw/query`` under the default node name), spatialclaw_msgs/action/SpatialQuery.
Every goal is accepted and then either answered or ended with ``success=false`` and a specific ERROR_* code
(a rejected goal could not carry one). The agent runs on one worker thread, never on the executor;
cancelling a goal cancels the running model call and cell. After an answer the node publishes, latched
(TRANSIENT_LOCAL, depth 1): ``~/markers`` (MarkerArray in a per-goal namespace, after a DELETEALL of it and of
the previous answer's), ``~/cloud/reconstruction`` and ``~/cloud/objects`` (PointCloud2), ``~/answer``
(std_msgs/String, JSON); and ``~/debug_image`` (the images the agent's cells showed). ``/diagnostics``
reports input rates, buffer fill and age, TF age, endpoint health and goal latency.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from spatialclaw_msgs.action import SpatialQuery
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from ..agent import Agent, AgentEvent, AgentResult
from ..agent.result import ANSWERED
from ..answers import AnswerKind
from ..cancel import CancelToken
from ..frame_buffer import FrameRequest, FrameSelectionError, NoFramesError
from ..frames import FrameSet
from ..imaging import decode_png
from ..session_log import read_trace
from ..session_log.log import SessionLog
from ..tf_buffer import TransformError
from ..visualization import OBJECTS, RECONSTRUCTION, answer_record, build_markup, evidence_in, key_points
from . import diagnostics as diag
from . import publishing
from .conversions import seconds_to_stamp_fields
from .ingest import Ingest
from .params import CAMERA_NAMES, MAX_QUEUE_SIZE, NodeParams, Parameter, all_parameters
from .query import GoalError, GoalGate, Query, agent_code, make_query

NODE_NAME = "spatialclaw"
READY_LINE = "spatialclaw node ready"
#: Executor threads: action, parameter and timer callbacks, plus one blocked per running or waiting goal
#: (sensor input has its own executor, see ingest.py).
EXECUTOR_THREADS = 4 + MAX_QUEUE_SIZE
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
ANSWER_TYPES = {AnswerKind.NUMBER: "number", AnswerKind.COUNT: "number", AnswerKind.CHOICE: "choice",
                AnswerKind.YES_NO: "boolean", AnswerKind.TEXT: "text"}


@dataclass
class Outcome:
    """How a goal ended: an ERROR_* name (ERROR_NONE on success), a message and what the result reports."""

    code: str
    message: str = ""
    result: AgentResult | None = None
    points: list[tuple[str, np.ndarray]] = field(default_factory=list)
    target_frame: str = ""
    stamp_s: float = 0.0
    session_dir: str = ""


@dataclass(eq=False)
class Job:
    """An admitted goal waiting for or being answered by the worker."""

    query: Query
    goal_handle: object
    token: CancelToken
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


def _descriptor(parameter: Parameter) -> ParameterDescriptor:
    constraints = f"one of: {', '.join(parameter.choices)}" if parameter.choices else ""
    descriptor = ParameterDescriptor(description=parameter.description, read_only=parameter.read_only,
                                     additional_constraints=constraints)
    if isinstance(parameter.default, float) and parameter.low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(parameter.low),
                                                              to_value=float(parameter.high), step=0.0)]
    elif isinstance(parameter.default, int) and not isinstance(parameter.default, bool) and parameter.low is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(parameter.low), to_value=int(parameter.high), step=0)]
    return descriptor


class SpatialClawNode(Node):
    """Frames and TF in, SpatialQuery goals answered by the agent on a worker thread, answers shown in RViz."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._params = self._declare_parameters()
        params = self._params
        self._params_lock = threading.Lock()
        self._goal_stats = diag.GoalStats()
        self._stats_lock = threading.Lock()
        self._types = publishing.rclpy_types()
        self._previous_namespace = ""

        self._ingest = Ingest(self.context, self.get_name(), self.get_namespace(), params, self._now, self.get_logger())
        self.tf, self.frames = self._ingest.tf, self._ingest.frames
        self._markers = self.create_publisher(MarkerArray, "~/markers", LATCHED)
        self._clouds = {RECONSTRUCTION: self.create_publisher(PointCloud2, "~/cloud/reconstruction", LATCHED),
                        OBJECTS: self.create_publisher(PointCloud2, "~/cloud/objects", LATCHED)}
        self._answer_text = self.create_publisher(String, "~/answer", LATCHED)
        self._debug_image = self.create_publisher(Image, "~/debug_image", 10)

        self._agent = Agent(params.agent_config())
        self._agent_settings = params.model_settings()
        self._endpoint = diag.EndpointMonitor(self._agent.model.ping, params.endpoint_check_s)
        self._gate = GoalGate()
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._tokens: dict[bytes, CancelToken] = {}
        self._worker = threading.Thread(target=self._work, name="spatialclaw-agent", daemon=True)
        self._worker.start()
        self._action = ActionServer(
            self, SpatialQuery, "~/query", execute_callback=self._execute, goal_callback=lambda _: GoalResponse.ACCEPT,
            cancel_callback=self._cancel, callback_group=ReentrantCallbackGroup())
        self._diagnostics = self._diagnostics_publisher()
        if self._diagnostics is not None:
            self.create_timer(params.diagnostics_period_s, self._publish_diagnostics,
                              callback_group=MutuallyExclusiveCallbackGroup())
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        cameras = ", ".join(f"{c.name} ({c.image_topic})" for c in params.cameras)
        self.get_logger().info(f"{READY_LINE}: action {self._action_name()}, cameras {cameras}, "
                               f"world frame {params.world_frame}, goal policy {params.goal_policy}")

    # -- parameters ----------------------------------------------------------------------------

    def _declare_parameters(self) -> NodeParams:
        names = self.declare_parameter(CAMERA_NAMES, ["front"], ParameterDescriptor(
            description="names of the cameras; each has cameras.<name>.{image,depth,info}_topic", read_only=True)).value
        for parameter in all_parameters(list(names)):
            self.declare_parameter(parameter.name, parameter.default, _descriptor(parameter))
        return NodeParams.from_values(self._parameter_values())

    def _parameter_values(self, changes=()) -> dict:
        names = list(self.get_parameter(CAMERA_NAMES).value)
        values = {p.name: self.get_parameter(p.name).value for p in all_parameters(names)}
        values[CAMERA_NAMES] = names
        values.update({change.name: change.value for change in changes if change.name in values})
        return values

    def _validate_parameters(self, changes) -> SetParametersResult:
        """Check a parameter change as a whole (no side effects; it is applied in _apply_parameters)."""
        try:
            NodeParams.from_values(self._parameter_values(changes))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes) -> None:
        params = NodeParams.from_values(self._parameter_values())
        with self._params_lock:
            self._params = params
        self.frames.policy = params.keyframes
        self.get_logger().info("parameters changed: " + ", ".join(f"{c.name}={c.value!r}" for c in changes))

    @property
    def params(self) -> NodeParams:
        """The parameter values in force (replaced as a whole when parameters change)."""
        with self._params_lock:
            return self._params

    # -- goals ---------------------------------------------------------------------------------

    def _cancel(self, goal_handle) -> CancelResponse:
        """Accept every cancel request; the goal's token stops the model call and the cell it is in."""
        token = self._tokens.get(bytes(goal_handle.goal_id.uuid))
        if token is not None:
            token.cancel("cancel requested by the action client")
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> SpatialQuery.Result:
        """Check and admit the goal, then wait (on this executor thread) for the worker to answer it."""
        started = time.monotonic()
        params = self.params
        try:
            query = make_query(goal_handle.request, params, self._now(), self.tf)
        except GoalError as error:
            return self._finish(goal_handle, self._failure(error.code, str(error), goal_handle.request.question), started)
        if not self._gate.admit(params.goal_policy, params.queue_size):
            message = ("the node is busy: a goal is running and the goal policy is 'reject'" if params.goal_policy == "reject"
                       else f"the node is busy: a goal is running and {params.queue_size} are already waiting "
                            f"(goals.queue_size)")
            return self._finish(goal_handle, self._failure("ERROR_BUSY", message, query.question), started)
        key = bytes(goal_handle.goal_id.uuid)
        job = Job(query, goal_handle, CancelToken(), started)
        self._tokens[key] = job.token
        try:
            with self._stats_lock:
                waiting = self._goal_stats.active > 0
                self._goal_stats.active += 1
            if waiting:
                self._feedback(job, "queued")
            self._jobs.put(job)
            job.done.wait()
        finally:
            self._tokens.pop(key, None)
            self._gate.release()
            with self._stats_lock:
                self._goal_stats.active -= 1
        return self._finish(goal_handle, job.outcome, started)

    def _finish(self, goal_handle, outcome: Outcome, started: float) -> SpatialQuery.Result:
        """End the goal in the state its outcome calls for and build its result."""
        result = SpatialQuery.Result(success=outcome.code == "ERROR_NONE", error_code=getattr(SpatialQuery.Result, outcome.code),
                                     error_message=outcome.message, value=math.nan, session_dir=outcome.session_dir,
                                     elapsed_sec=time.monotonic() - started)
        agent_result = outcome.result
        if agent_result is not None:
            result.steps = agent_result.steps
            result.low_confidence = agent_result.low_confidence
            answer = agent_result.answer
            if answer is not None:
                result.answer = answer.text
                result.value = math.nan if answer.value is None else float(answer.value)
                result.unit = answer.unit or ""
                result.answer_type = ANSWER_TYPES.get(answer.kind, "text")
        header = Header(stamp=Time(**seconds_to_stamp_fields(outcome.stamp_s)), frame_id=outcome.target_frame)
        result.points = [PointStamped(header=header, point=Point(x=float(x), y=float(y), z=float(z)))
                         for _, (x, y, z) in outcome.points]
        if outcome.code == "ERROR_CANCELED" and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        with self._stats_lock:
            stats = self._goal_stats
            stats.finished += 1
            stats.succeeded += int(result.success)
            stats.last_code, stats.last_latency_s = outcome.code, result.elapsed_sec
        summary = f"goal {outcome.code}: {result.answer or outcome.message} ({result.elapsed_sec:.2f} s)"
        if result.success:  # rclpy refuses one call site logging at two severities
            self.get_logger().info(summary)
        else:
            self.get_logger().warning(summary)
        return result

    def _failure(self, code: str, message: str, question: str) -> Outcome:
        """An outcome for a goal that ends before the agent runs; its session log is still written."""
        log = SessionLog.create(self.params.agent_config().agent.sessions_dir)
        log.event("goal", question=question)
        log.event("error", code=code, message=message)
        log.write_result({"status": "failed", "error_code": code, "error_message": message, "question": question})
        log.close()
        return Outcome(code, message, session_dir=str(log.directory))

    def _feedback(self, job: Job, stage: str, event: AgentEvent | None = None) -> None:
        feedback = SpatialQuery.Feedback(stage=stage, elapsed_sec=time.monotonic() - job.started)
        if event is not None:
            feedback.step, feedback.max_steps = event.step, event.max_steps
            feedback.code, feedback.output_summary = event.code, event.output_summary
        job.goal_handle.publish_feedback(feedback)

    def _on_event(self, job: Job, event: AgentEvent) -> None:
        stage = f"step {event.step}" if event.stage == "step" else event.stage
        self._feedback(job, stage, event)

    # -- the worker ----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job.outcome = self._run_job(job)
            except Exception as error:  # a bug must end this goal, not the node
                self.get_logger().error(f"goal failed with an internal error:\n{traceback.format_exc()}")
                job.outcome = self._failure("ERROR_INTERNAL", f"{type(error).__name__}: {error}", job.query.question)
            finally:
                job.done.set()

    def _run_job(self, job: Job) -> Outcome:
        query, params = job.query, self.params
        if job.token.cancelled:
            return self._failure("ERROR_CANCELED", "cancelled before it started", query.question)
        self._refresh_agent(params)
        try:
            frames = self.frames.frame_set(FrameRequest(query.end_s, query.window_s, query.max_frames,
                                                        list(query.cameras) if query.cameras else None),
                                           self.tf, params.world_frame)
        except (NoFramesError, FrameSelectionError) as error:
            return self._failure("ERROR_NO_FRAMES", str(error), query.question)
        except TransformError as error:
            return self._failure("ERROR_TF", str(error), query.question)
        self._feedback(job, "buffering")
        result = self._agent.ask(query.question, frames, choices=query.choices, cancel=job.token,
                                 on_event=lambda event: self._on_event(job, event),
                                 max_steps=query.max_steps, deadline_s=query.timeout_s)
        outcome = Outcome("ERROR_NONE" if result.status == ANSWERED else agent_code(result.error_code),
                          result.error_message, result, target_frame=query.target_frame,
                          stamp_s=max(f.stamp for f in frames.frames), session_dir=str(result.session_dir))
        if result.status != ANSWERED:
            return outcome
        try:
            outcome.points = key_points(evidence_in(result.answer, frames, self.tf, query.target_frame))
        except TransformError as error:
            outcome.code, outcome.message = "ERROR_TF", f"answered, but its points cannot be put in {query.target_frame!r}: {error}"
            return outcome
        if params.visualization:
            self._publish_answer(job, result, frames, params)
        return outcome

    def _refresh_agent(self, params: NodeParams) -> None:
        """Rebuild the agent when the model or sessions parameters changed (between goals only)."""
        if params.model_settings() == self._agent_settings:
            return
        old, self._agent = self._agent, Agent(params.agent_config())
        self._agent_settings = params.model_settings()
        self._endpoint.set_ping(self._agent.model.ping)
        old.close()

    def _publish_answer(self, job: Job, result: AgentResult, frames: FrameSet, params: NodeParams) -> None:
        """Markers, clouds, the answer text and the cells' shown images of an answered goal."""
        namespace = "answer_" + bytes(job.goal_handle.goal_id.uuid).hex()[:8]
        markup = build_markup(result, frames, self.tf, job.query.target_frame, namespace=namespace,
                              cloud_voxel_m=params.cloud_voxel_m, cloud_max_points=params.cloud_max_points)
        clear = [self._previous_namespace] if self._previous_namespace else []
        self._markers.publish(publishing.marker_array(self._types, markup, clear))
        self._previous_namespace = namespace
        for cloud in markup.clouds:
            self._clouds[cloud.name].publish(publishing.point_cloud(self._types, cloud, markup.frame_id, markup.stamp_s))
        self._answer_text.publish(String(data=json.dumps(answer_record(job.query.question, result, markup.frame_id))))
        for png in _shown_images(result.session_dir):
            self._debug_image.publish(publishing.rgb_image(self._types, decode_png(png), "", markup.stamp_s))

    # -- diagnostics ---------------------------------------------------------------------------

    def _diagnostics_publisher(self):
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError:
            self.get_logger().warning(
                "diagnostic_msgs is not installed, so /diagnostics is off (apt: ros-<distro>-diagnostic-msgs; "
                "pip: ros-jazzy-diagnostic-msgs)")
            return None
        return self.create_publisher(DiagnosticArray, "/diagnostics", 10)

    def _publish_diagnostics(self) -> None:
        params, now = self.params, self._now()
        tf_stats = self._ingest.tf_stats()
        with self._stats_lock:
            goals = diag.GoalStats(**vars(self._goal_stats))
        statuses = [diag.camera_status(stats, params.buffer, {"image": camera.image_topic, "depth": camera.depth_topic,
                                                               "info": camera.info_topic}, now)
                    for stats, camera in zip(self.frames.stats(), params.cameras)]
        statuses += [diag.tf_status(tf_stats, now),
                     diag.endpoint_status(self._endpoint.health, self._agent.model.endpoint, time.monotonic()),
                     diag.goals_status(goals)]
        self._diagnostics.publish(diag.diagnostic_array(statuses, self.get_clock().now().to_msg()))

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _action_name(self) -> str:
        return self.resolve_topic_name("~/query")

    def close(self) -> None:
        """Stop the inputs, the worker (cancelling the running goal), the endpoint monitor and the agent."""
        self._ingest.close()
        for token in list(self._tokens.values()):
            token.cancel("the node is shutting down")
        self._jobs.put(None)
        self._worker.join()
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if job is not None:
                job.outcome = Outcome("ERROR_INTERNAL", "the node shut down before this goal ran")
                job.done.set()
        self._endpoint.stop()
        self._agent.close()


def _shown_images(session_dir: Path) -> list[bytes]:
    """PNG bytes of the images the goal's cells passed to show(), in order."""
    images = []
    for event in read_trace(session_dir):
        if event["kind"] == "cell":
            images += [(Path(session_dir) / image["file"]).read_bytes() for image in event.get("images") or []]
    return images


def main(args=None) -> int:
    """Run the node until SIGINT/SIGTERM: ``spatialclaw_node --ros-args --params-file spatialclaw.yaml``."""
    rclpy.init(args=args)
    try:
        node = SpatialClawNode()
    except (ValueError, FileNotFoundError) as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
