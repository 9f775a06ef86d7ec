"""The SpatialClaw ROS 2 node, a lifecycle node: buffers camera frames and TF, answers SpatialQuery goals, shows
in RViz what the agent used.

Lifecycle (``rclpy.lifecycle``): the parameters (``params.py``, all from ``config``'s one declaration) are declared
at start. **configure** checks them all (a value of the wrong type or range, or a name the params file gives that
no parameter has, fails it with the reason), builds the frame buffer, the tf2 buffer, the kernel pool and the
agent, and loads the perception backends (a missing or invalid model file fails here, naming the setting).
**activate** subscribes to the cameras and TF and starts the action server ``~/query``. **deactivate** ends the
goals in flight (ERROR_CANCELED), stops serving and frees the models. **cleanup** and **shutdown** release
everything. ``spatialclaw.launch.py`` drives the node to active (``autostart:=false`` leaves it unconfigured).

Goals: every goal is accepted, then answered or ended with ``success=false`` and a specific ERROR_* code (a
rejected goal could not carry one). Its frames are taken when it arrives, so a goal waiting behind another
(``goals.policy: queue``) keeps them. The agent runs on one worker thread, never on the executor; cancelling a
goal cancels its model call and cell. After an answer the node publishes, latched (TRANSIENT_LOCAL, depth 1):
``~/markers`` (MarkerArray in a per-goal namespace, after a DELETEALL of it and of the previous answer's),
``~/cloud/reconstruction`` (the reconstruction the cells used) and ``~/cloud/objects`` (PointCloud2),
``~/answer`` (std_msgs/String: the result.json record as JSON); and ``~/debug_image`` (the images the cells
showed). ``/diagnostics`` reports the lifecycle state, input rates, buffer fill and age, TF, endpoint health,
goals, each kernel sandbox layer and each perception backend.
"""

from __future__ import annotations

import json
import math
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import rclpy
import tf2_ros
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from spatialclaw_msgs.action import SpatialQuery
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from ..agent import Agent, AgentEvent, AgentResult
from ..agent.result import ANSWERED, ErrorCode
from ..answers import AnswerKind
from ..cancel import CancelToken
from ..config import MAX_QUEUED_GOALS, Config, DeclaredSetting, NodeConfig, load_config
from ..frame_buffer import FrameBuffer, FrameRequest, FrameSelectionError
from ..frames import FrameSet
from ..imaging import decode_png
from ..kernel.pool import KernelPool
from ..perception.service import PerceptionService
from ..tf_buffer import TransformError
from ..visualization import (OBJECTS, RECONSTRUCTION, ReconstructionRecorder, answer_record, build_markup,
                             evidence_in, key_points, used_reconstruction)
from . import diagnostics as diag
from . import publishing
from .conversions import seconds_to_stamp_fields
from .ingest import Ingest
from .params import CAMERA_NAMES, NodeSettings, node_parameters, unknown_parameters
from .query import GoalCode, GoalError, GoalGate, Query, action_code, make_query
from .transforms import Tf2Transforms, frame_table

NODE_NAME = "spatialclaw"
READY_LINE = "spatialclaw node active"
#: Executor threads: action, parameter, lifecycle and timer callbacks, plus one blocked per running or waiting goal
#: (sensor input has its own executor, see ingest.py).
EXECUTOR_THREADS = 4 + MAX_QUEUED_GOALS
#: How long deactivating waits for the goals it cancelled to end.
DEACTIVATE_WAIT_S = 30.0
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
ANSWER_TYPES = {AnswerKind.NUMBER: "number", AnswerKind.COUNT: "number", AnswerKind.CHOICE: "choice",
                AnswerKind.YES_NO: "boolean", AnswerKind.TEXT: "text"}
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


@dataclass
class Outcome:
    """How a goal ended: an error code (ErrorCode or GoalCode; "" on success), a message and what the result says."""

    code: str
    message: str = ""
    result: AgentResult | None = None
    points: list[tuple[str, np.ndarray]] = field(default_factory=list)
    target_frame: str = ""
    stamp_s: float = 0.0
    session_dir: str = ""


@dataclass(eq=False)
class Job:
    """An admitted goal with its frames, waiting for or being answered by the worker."""

    query: Query
    goal_handle: object
    token: CancelToken
    started: float
    frames: FrameSet | None = None
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


def descriptor(parameter: DeclaredSetting) -> ParameterDescriptor:
    """The ROS descriptor of a declared setting: its description, range, choices and read-only flag."""
    setting, default = parameter.setting, parameter.value
    constraints = f"one of: {', '.join(setting.choices)}" if setting.choices else ""
    result = ParameterDescriptor(description=setting.description, read_only=setting.read_only,
                                 additional_constraints=constraints)
    if isinstance(default, float) and setting.low is not None:
        result.floating_point_range = [FloatingPointRange(from_value=float(setting.low), to_value=float(setting.high),
                                                          step=0.0)]
    elif isinstance(default, int) and not isinstance(default, bool) and setting.low is not None:
        result.integer_range = [IntegerRange(from_value=int(setting.low), to_value=int(setting.high), step=0)]
    return result


class SpatialClawNode(LifecycleNode):
    """Frames and TF in, SpatialQuery goals answered by the agent on a worker thread, what it used shown in RViz."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._base = load_config(env=None)  # defaults and the environment (endpoint, model, API key)
        self._parameter_problems = self._declare_parameters()
        self._settings: NodeSettings | None = None
        self._settings_lock = threading.Lock()
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._types = publishing.rclpy_types()
        self._gate = GoalGate()
        self._tokens: dict[bytes, CancelToken] = {}
        self._goal_stats = diag.GoalStats()
        self._stats_lock = threading.Lock()
        self._shutting_down = False
        self._configured = self._active = False
        self._release_lock = threading.Lock()  # the diagnostics timer never reads what cleanup is releasing
        self.get_logger().info("spatialclaw node unconfigured (configure, then activate, to serve goals)")

    # -- parameters ----------------------------------------------------------------------------

    def _declare_parameters(self) -> list[str]:
        """Declare every parameter with its descriptor; returns what is wrong with the params file's values
        (configure reports it): wrong types or ranges (the default is kept) and names no parameter has."""
        problems: list[str] = []

        def declare(parameter: DeclaredSetting):
            try:
                return self.declare_parameter(parameter.name, parameter.value, descriptor(parameter)).value
            except (InvalidParameterTypeException, InvalidParameterValueException) as error:
                problems.append(f"{parameter.name}: {error}")
                return self.declare_parameter(parameter.name, parameter.value, descriptor(parameter),
                                              ignore_override=True).value

        names = declare(next(p for p in node_parameters(self._base, NodeConfig(), []) if p.name == CAMERA_NAMES))
        for parameter in node_parameters(self._base, NodeConfig(), names):
            if not self.has_parameter(parameter.name):
                declare(parameter)
        # rclpy keeps the params file's values for this node as its parameter overrides (it has no public accessor).
        unknown = unknown_parameters(self._parameter_overrides, self.get_parameters_by_prefix(""))
        if unknown:
            problems.append(f"the params file sets parameters this node does not have: {', '.join(unknown)}")
        return problems

    def _parameter_values(self, changes=()) -> dict:
        """Every parameter of the schema by name, with ``changes`` (rclpy Parameters) applied."""
        names = [p.name for p in node_parameters(self._base, NodeConfig(), self.get_parameter(CAMERA_NAMES).value)]
        values = {parameter.name: parameter.value for parameter in self.get_parameters(names)}
        values.update({change.name: change.value for change in changes if change.name in values})
        return values

    def _validate_parameters(self, changes) -> SetParametersResult:
        """Check a parameter change as a whole (no side effects; it is applied in _apply_parameters)."""
        try:
            NodeSettings.from_values(self._parameter_values(changes), self._base)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes) -> None:
        if self._settings is None:
            return  # read at configure
        with self._settings_lock:
            self._settings = NodeSettings.from_values(self._parameter_values(), self._base)
        self.get_logger().info("parameters changed: " + ", ".join(f"{c.name}={c.value!r}" for c in changes))

    @property
    def settings(self) -> NodeSettings:
        """The parameter values in force (replaced as a whole when parameters change)."""
        with self._settings_lock:
            return self._settings

    # -- lifecycle -----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, build what serving needs and load the perception backends."""
        try:
            if self._parameter_problems:
                raise ValueError("; ".join(self._parameter_problems))
            settings = NodeSettings.from_values(self._parameter_values(), self._base)
            perception = ReconstructionRecorder(PerceptionService(settings.core.perception))
            perception.load()
        except (ValueError, ImportError) as error:
            self.get_logger().error(f"cannot configure: {error}")
            return FAILURE
        with self._settings_lock:
            self._settings = settings
        self._perception, self._models_loaded = perception, True
        self._tf_buffer = tf2_ros.Buffer(cache_time=Duration(seconds=settings.tf_cache_s))
        self._transforms = Tf2Transforms(self._tf_buffer)
        self._frames = FrameBuffer([camera.name for camera in settings.cameras], settings.core.frames,
                                   settings.node.buffer)
        self._pool = KernelPool(settings.core.kernel)
        self._agent = Agent(settings.core, pool=self._pool, perception=perception)
        self._endpoint = diag.EndpointMonitor(self._agent.model.ping, settings.node.diagnostics.endpoint_check_s)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="spatialclaw-agent", daemon=True)
        self._worker.start()
        self._markers = self.create_lifecycle_publisher(MarkerArray, "~/markers", LATCHED)
        self._clouds = {RECONSTRUCTION: self.create_lifecycle_publisher(PointCloud2, "~/cloud/reconstruction", LATCHED),
                        OBJECTS: self.create_lifecycle_publisher(PointCloud2, "~/cloud/objects", LATCHED)}
        self._answer_text = self.create_lifecycle_publisher(String, "~/answer", LATCHED)
        self._debug_image = self.create_lifecycle_publisher(Image, "~/debug_image", 10)
        self._previous_namespace = ""
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(settings.node.diagnostics.period_s, self._publish_diagnostics,
                                                    callback_group=MutuallyExclusiveCallbackGroup())
        self._configured = True
        backends = ", ".join(f"{b.name} {b.kind} ({b.provider})" for b in perception.report())
        self.get_logger().info(f"configured: cameras {', '.join(c.name for c in settings.cameras)}; perception "
                               f"{backends}")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the models again if a deactivate freed them, subscribe to the inputs, start the action server."""
        if not self._models_loaded:
            try:
                self._perception.load()
            except ValueError as error:
                self.get_logger().error(f"cannot activate: {error}")
                return FAILURE
            self._models_loaded = True
        settings = self.settings
        self._ingest = Ingest(self, settings, self._frames, self._tf_buffer, self._now)
        self._action = ActionServer(
            self, SpatialQuery, "~/query", execute_callback=self._execute, goal_callback=lambda _: GoalResponse.ACCEPT,
            cancel_callback=self._cancel, callback_group=ReentrantCallbackGroup())
        self._active = True
        cameras = ", ".join(f"{c.name} ({self.resolve_topic_name(c.image_topic)})" for c in settings.cameras)
        self.get_logger().info(f"{READY_LINE}: action {self.resolve_topic_name('~/query')}, cameras {cameras}, world "
                               f"frame {settings.core.frames.world_frame or '(root of the TF tree)'}, goal policy "
                               f"{settings.node.goals.policy}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """End the goals in flight, stop serving, free the models."""
        self._stop_serving("the node is being deactivated")
        self.get_logger().info("deactivated: not serving goals; perception models freed")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: unconfigured")
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"a transition from {state.label} failed; releasing everything")
        self.close()
        return SUCCESS

    def _stop_serving(self, reason: str) -> None:
        """Cancel every goal, wait for them to end, destroy the action server and subscriptions, free the models."""
        if not self._active:
            return
        self._active = False
        for token in list(self._tokens.values()):
            token.cancel(reason)
        deadline = time.monotonic() + DEACTIVATE_WAIT_S
        while self._gate.active and time.monotonic() < deadline:
            time.sleep(0.05)
        self._action.destroy()
        self._ingest.close()
        self._frames.clear()
        self._perception.close()
        self._models_loaded = False

    def _release(self) -> None:
        """Everything configure built (after stopping serving)."""
        with self._release_lock:
            if not self._configured:
                return
            self._configured = False
        self._jobs.put(None)
        self._worker.join()
        self._endpoint.stop()
        self.destroy_timer(self._diagnostics_timer)
        for publisher in (self._markers, *self._clouds.values(), self._answer_text, self._debug_image,
                          self._diagnostics):
            self.destroy_publisher(publisher)
        self._agent.close()
        self._pool.close()
        self._perception.close()
        with self._settings_lock:
            self._settings = None

    def close(self) -> None:
        """Stop serving and release everything, whatever the state (shutdown, Ctrl-C)."""
        self._shutting_down = True
        self._stop_serving("the node is shutting down")
        self._release()

    # -- goals ---------------------------------------------------------------------------------

    def _cancel(self, goal_handle) -> CancelResponse:
        """Accept every cancel request; the goal's token stops the model call and the cell it is in."""
        token = self._tokens.get(bytes(goal_handle.goal_id.uuid))
        if token is not None:
            token.cancel("cancel requested by the action client")
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> SpatialQuery.Result:
        """Check and admit the goal, take its frames, then wait (on this executor thread) for the worker."""
        started = time.monotonic()
        settings = self.settings
        try:
            query = make_query(goal_handle.request, settings, self._now(), self._transforms)
        except GoalError as error:
            return self._finish(goal_handle, self._failure(error.code, str(error), goal_handle.request.question), started)
        goals = settings.node.goals
        if not self._gate.admit(goals.policy, goals.queue_size):
            message = ("the node is busy: a goal is running and the goal policy is 'reject'" if goals.policy == "reject"
                       else f"the node is busy: a goal is running and {goals.queue_size} are already waiting "
                            f"(goals.queue_size)")
            return self._finish(goal_handle, self._failure(GoalCode.BUSY, message, query.question), started)
        key = bytes(goal_handle.goal_id.uuid)
        job = Job(query, goal_handle, CancelToken(), started)
        self._tokens[key] = job.token
        try:
            with self._stats_lock:
                waiting = self._goal_stats.active > 0
                self._goal_stats.active += 1
            self._feedback(job, "buffering")
            try:
                job.frames = self._frame_set(query, settings)
            except GoalError as error:
                job.outcome = self._failure(error.code, str(error), query.question)
            else:
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

    def _frame_set(self, query: Query, settings: NodeSettings) -> FrameSet:
        """The goal's key frames, taken now (a queued goal keeps them); GoalError(NO_FRAMES or TF) when none."""
        request = FrameRequest(query.end_s, query.window_s, query.max_frames,
                               list(query.cameras) if query.cameras else None)
        try:
            return self._frames.frame_set(request, self._transforms, settings.core.frames,
                                          tf_timeout_s=settings.node.tf.timeout_s)
        except FrameSelectionError as error:
            raise GoalError(GoalCode.NO_FRAMES, str(error)) from None
        except TransformError as error:
            raise GoalError(GoalCode.TF, str(error)) from None

    def _finish(self, goal_handle, outcome: Outcome, started: float) -> SpatialQuery.Result:
        """End the goal in the state its outcome calls for and build its result."""
        constant = action_code(outcome.code)
        result = SpatialQuery.Result(success=constant == "ERROR_NONE", error_code=getattr(SpatialQuery.Result, constant),
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
        if outcome.code == ErrorCode.CANCELLED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        with self._stats_lock:
            stats = self._goal_stats
            stats.finished += 1
            stats.succeeded += int(result.success)
            stats.last_code, stats.last_latency_s = constant, result.elapsed_sec
        summary = f"goal {constant}: {result.answer or outcome.message} ({result.elapsed_sec:.2f} s)"
        if result.success:  # rclpy refuses one call site logging at two severities
            self.get_logger().info(summary)
        else:
            self.get_logger().warning(summary)
        return result

    def _failure(self, code: str, message: str, question: str) -> Outcome:
        """The outcome of a goal that ends before the agent runs; its session log is written like any other."""
        try:
            result = self._agent.fail(question, code, message)
            session_dir, log_error = str(result.session_dir), result.log_error
        except OSError as error:  # the sessions directory cannot be written: the goal still gets its reason
            session_dir, log_error = "", f"{type(error).__name__}: {error}"
        if log_error:
            message += f" (its session log could not be written: {log_error})"
        return Outcome(code, message, session_dir=session_dir)

    def _feedback(self, job: Job, stage: str, event: AgentEvent | None = None) -> None:
        feedback = SpatialQuery.Feedback(stage=stage, elapsed_sec=time.monotonic() - job.started)
        if event is not None:
            feedback.step, feedback.max_steps = event.step, event.max_steps
            feedback.code, feedback.output_summary = event.code, event.output_summary
            feedback.bytes_sent = event.bytes_sent
            feedback.image_tokens = event.image_tokens
            feedback.text_tokens = event.text_tokens
        try:
            job.goal_handle.publish_feedback(feedback)
        except Exception:  # the context is shutting down (Ctrl-C): the goal ends anyway
            if not self._shutting_down:
                raise

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
            except Exception as error:  # a bug or an unhandled fault must end this goal, not the node
                reason = f"{type(error).__name__}: {error}"
                if not self._shutting_down:  # one line; the traceback only at debug level
                    self.get_logger().error(f"goal failed with an internal error: {reason}")
                    self.get_logger().debug(traceback.format_exc())
                job.outcome = self._failure(ErrorCode.INTERNAL_ERROR, reason, job.query.question)
            finally:
                job.done.set()

    def _run_job(self, job: Job) -> Outcome:
        query, settings, frames = job.query, self.settings, job.frames
        if job.token.cancelled:
            return self._failure(ErrorCode.CANCELLED, f"cancelled before it started ({job.token.reason})",
                                 query.question)
        self._refresh_agent(settings.core)
        result = self._agent.ask(query.question, frames, choices=query.choices, cancel=job.token,
                                 on_event=lambda event: self._on_event(job, event),
                                 max_steps=query.max_steps, deadline_s=query.timeout_s)
        target = query.target_frame or frames.world_frame
        outcome = Outcome(result.error_code, result.error_message, result, target_frame=target,
                          stamp_s=max(f.stamp for f in frames.frames), session_dir=str(result.session_dir))
        if result.status != ANSWERED:
            return outcome
        log_error = result.log_error
        if log_error:
            outcome.message = f"answered, but the session log is incomplete: {log_error}"
            self.get_logger().warning(outcome.message)
        try:
            outcome.points = key_points(evidence_in(result.answer, frames, self._transforms, target))
        except TransformError as error:
            outcome.code, outcome.message = GoalCode.TF, f"answered, but its points cannot be put in {target!r}: {error}"
            return outcome
        if settings.node.visualization.enabled:
            self._publish_answer(job, result, frames, settings, target)
        return outcome

    def _refresh_agent(self, core: Config) -> None:
        """Rebuild the agent when a core parameter changed (between goals only; the kernel pool and perception
        settings are read-only, so the pool and the loaded models stay)."""
        if core == self._agent.config:
            return
        old, self._agent = self._agent, Agent(core, pool=self._pool, perception=self._perception)
        self._endpoint.set_ping(self._agent.model.ping)
        old.close()

    def _publish_answer(self, job: Job, result: AgentResult, frames: FrameSet, settings: NodeSettings,
                        target: str) -> None:
        """Markers, clouds (the reconstruction the cells used), the answer record and the images the cells showed."""
        namespace = "answer_" + bytes(job.goal_handle.goal_id.uuid).hex()[:8]
        reconstruction = used_reconstruction(frames, settings.core.perception, self._perception.served())
        visualization = settings.node.visualization
        markup = build_markup(result, frames, self._transforms, target, namespace=namespace,
                              reconstruction=reconstruction, cloud_voxel_m=visualization.cloud_voxel_m,
                              cloud_max_points=visualization.cloud_max_points)
        clear = [self._previous_namespace] if self._previous_namespace else []
        self._markers.publish(publishing.marker_array(self._types, markup, clear))
        self._previous_namespace = namespace
        for cloud in markup.clouds:
            self._clouds[cloud.name].publish(publishing.point_cloud(self._types, cloud, markup.frame_id, markup.stamp_s))
        self._answer_text.publish(String(data=json.dumps(answer_record(job.query.question, result, markup.frame_id))))
        for image in result.shown_images:
            self._debug_image.publish(publishing.rgb_image(self._types, decode_png(image.png), "", markup.stamp_s))

    # -- diagnostics ---------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        with self._release_lock:
            if self._configured:
                self._publish_diagnostics_locked()

    def _publish_diagnostics_locked(self) -> None:
        settings, now = self.settings, self._now()
        with self._stats_lock:
            goals = diag.GoalStats(**vars(self._goal_stats))
        layers = self._pool.sandbox_layers()
        statuses = [diag.state_status("active" if self._active else "inactive")]
        statuses += [diag.camera_status(stats, settings.node.buffer, {"image": camera.image_topic,
                                                                      "depth": camera.depth_topic,
                                                                      "info": camera.info_topic}, now)
                     for stats, camera in zip(self._frames.stats(), settings.cameras)]
        statuses += [diag.tf_status(frame_table(self._tf_buffer), now),
                     diag.endpoint_status(self._endpoint.health, self._agent.model.endpoint, time.monotonic()),
                     diag.goals_status(goals), diag.sandbox_status(layers),
                     diag.perception_status(self._perception.report())]
        self._diagnostics.publish(diag.diagnostic_array(statuses, self.get_clock().now().to_msg()))

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def run(args=None) -> int:
    """Run the node until SIGINT/SIGTERM: ``spatialclaw_node --ros-args --params-file spatialclaw.yaml``.
    Ctrl-C ends it quietly (exit 0): goals in flight end canceled, and further Ctrl-C is ignored while it
    releases the kernels and models."""
    rclpy.init(args=args)
    node = SpatialClawNode()
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
