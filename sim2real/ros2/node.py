"""The deployment node: subscriptions, fixed-rate loop, safety, outputs, diagnostics.

``DeployNode(params)`` wires a robot description, an exported policy, a transport and an
output adapter together; :meth:`DeployNode.run` runs the control loop until ``duration_s``
elapses or :meth:`DeployNode.stop` is called, then prints loop statistics and trip counts.
``main`` is the ``deploy_node`` console script (``ros2 run sim2real deploy_node``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import load_robot
from sim2real.ros2.controller import ArmController, QuadController, StepResult
from sim2real.ros2.controller_drone import DRONE_OUTPUTS, LowLevelQuadController, low_level_limits, setup_low_level
from sim2real.ros2.kinematics import policy_chain
from sim2real.ros2.observation import (
    JointStateReader, ObservationBuilder, quad_state_from_odometry, update_quad_from_imu, update_quad_from_pose,
)
from sim2real.ros2.outputs import arm_command_adapter, topic as _topic, velocity_adapter
from sim2real.ros2.params import NODE_NAME, validate_params
from sim2real.ros2.policy import CallablePolicy, PolicySpec, load_policy
from sim2real.ros2.safety import SafetyLayer, joint_position_limits, safety_layer
from sim2real.ros2.stats import LoopStats
from sim2real.ros2.transport import Transport, make_transport, set_realtime_priority

LOG = logging.getLogger("sim2real.ros2")
#: trigger: state: a state this many periods before its grid slot still takes the slot (arrival jitter)
STATE_SLOT_TOLERANCE = 0.1


class DeployNode:
    """Deployment node.

    :param params: node parameters (validated with :func:`~sim2real.ros2.params.validate_params`).
    :param transport: a ready transport; default: ``make_transport(params["transport"])``.
    :param policy: optional callable ``obs (input_size,) -> action (act_size,)`` used instead of
        loading ``params["policy"]``; then ``spec`` (the sidecar) is required.
    """

    def __init__(self, params: dict[str, Any], *, transport: Transport | None = None,
                 policy: Callable[[np.ndarray], np.ndarray] | None = None, spec: PolicySpec | None = None,
                 node_name: str = NODE_NAME, ros_args: list[str] | None = None) -> None:
        self.params = p = validate_params(params)
        if policy is not None:
            if spec is None:
                raise ConfigError("a policy callable needs its sidecar spec")
            self.policy: Callable[[np.ndarray], np.ndarray] = CallablePolicy(policy, spec)
        else:
            if not p["policy"]:
                raise ConfigError("missing parameter: expected a policy file", path=(node_name, "ros__parameters", "policy"))
            self.policy, spec = load_policy(p["policy"], p["sidecar"] or None)
        assert spec is not None
        self.spec = spec
        self.robot = robot = load_robot(p["robot"] or spec.robot)
        if spec.robot != robot.name:
            LOG.warning("policy was exported for robot %r, deploying on %r", spec.robot, robot.name)
        self.rate_hz = p["rate_hz"] or spec.control_rate_hz or robot.control.rate_hz
        if spec.control_rate_hz and abs(self.rate_hz - spec.control_rate_hz) > 0.01 * spec.control_rate_hz:
            LOG.warning("rate_hz %.3g differs from the %.3g Hz the policy was trained at", self.rate_hz,
                        spec.control_rate_hz)
        self.period = 1.0 / self.rate_hz
        self.stats = LoopStats(self.period)
        self._lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._last_tick = -math.inf
        self._due = -math.inf  # trigger: state: next tick time on the policy-rate grid
        self._seen_arrival: float | None = None  # arrival time of the state the last tick used
        self._inline = False  # True while run() is active with trigger: state
        self._state: Any = None
        self._bad_states: set[tuple[str, ...]] = set()
        self._error: Exception | None = None
        self._goal = np.asarray(p["goal"], dtype=np.float64) if p["goal"] else None
        self._stop = threading.Event()
        if transport is None:
            set_realtime_priority(p["realtime_priority"])
        #: set to a list to record ``(now, state_arrival, stale, result)`` per tick (tests, debugging)
        self.trace: list[tuple[float, float | None, bool, StepResult | None]] | None = None
        self.transport = transport or make_transport(p["transport"], node_name,
                                                     domain_id=None if p["domain_id"] < 0 else p["domain_id"],
                                                     args=ros_args, use_sim_time=p["use_sim_time"])
        self.safety = self._make_safety()
        if robot.kind == "arm":
            self._setup_arm()
        elif robot.kind == "quadrotor":
            self._setup_quad()
        else:
            raise ConfigError(f"robot kind {robot.kind!r} is not supported by the deployment node (arm, quadrotor)",
                              file=str(robot.file), path=("kind",))
        t = self.transport
        t.subscribe(_topic(p, robot, "goal", "goal", "/goal_pose"), "geometry_msgs/msg/PoseStamped", self._on_goal)
        t.subscribe(_topic(p, robot, "estop", "estop", "/estop"), "std_msgs/msg/Bool", self._on_estop)
        self.resume_topic = _topic(p, robot, "resume", "resume", "/sim2real/resume")
        t.subscribe(self.resume_topic, "std_msgs/msg/Bool", self._on_resume)
        self._diag = t.advertise(_topic(p, robot, "diagnostics", "diagnostics", "/sim2real/diagnostics"),
                                 "diagnostic_msgs/msg/DiagnosticArray")

    # --- setup ---------------------------------------------------------------------------
    def _make_safety(self) -> SafetyLayer:
        p, robot, spec = self.params, self.robot, self.spec
        if robot.kind == "quadrotor" and spec.action_mode in ("thrust_rates", "motor"):
            lower, upper, step = low_level_limits(p, spec, self.period)
        elif robot.kind == "quadrotor":
            lim = np.full(3, p["safety.max_speed"])
            step = np.full(3, p["safety.max_accel"] * self.period)
            lower, upper = -lim, lim
        elif spec.action_mode == "joint_velocity":
            vmax = np.array([j.max_velocity for j in robot.joints])
            lower, upper, step = -vmax, vmax, np.full(len(vmax), p["safety.max_accel"] * self.period)
        else:
            lower, upper, step = joint_position_limits(robot, self.period, p["safety.max_step_scale"])
        return safety_layer(p, lower, upper, step, self.period)

    def _setup_arm(self) -> None:
        p, robot, spec = self.params, self.robot, self.spec
        if spec.action_mode not in ("joint_position_delta", "joint_position", "joint_velocity"):
            raise ConfigError(f"action mode {spec.action_mode!r} cannot drive an arm", file=spec.file,
                              path=("action", "mode"))
        if spec.action_size != robot.n_joints:
            raise ConfigError(f"action size {spec.action_size} != {robot.n_joints} joints of {robot.name}",
                              file=spec.file, path=("action", "size"))
        if spec.action_joints and list(spec.action_joints) != robot.joint_names:
            raise ConfigError(f"action joints {list(spec.action_joints)} differ from robot.yaml joints "
                              f"{robot.joint_names}", file=spec.file, path=("action", "joints"))
        needs_fk = any(n in ("ee_position", "target_delta") for n, _ in spec.layout)
        fk, ee_link = policy_chain(spec.kinematics, robot, spec.file) if needs_fk else (None, None)
        self.builder = ObservationBuilder(spec, n_joints=robot.n_joints, fk=fk, ee_link=ee_link,
                                          ee_com=p["kinematics.ee_com"], joint_names=robot.joint_names)
        self.controller: ArmController | QuadController | LowLevelQuadController = ArmController(
            robot, spec, self.policy, self.builder, self.safety, self.period)
        self.reader = JointStateReader(robot.ros2.joint_names)
        if spec.action_mode == "joint_velocity" and p["output"] == "joint_trajectory":
            raise ConfigError("joint_trajectory output needs a position policy", path=("output",))
        self.adapter: Any = arm_command_adapter(p, robot, self.transport, self.period)
        self.state_topic = _topic(p, robot, "joint_states", "joint_states", "/joint_states")
        self.transport.subscribe(self.state_topic, "sensor_msgs/msg/JointState", self._on_joint_state, sensor=True)

    def _setup_quad(self) -> None:
        p, robot, spec = self.params, self.robot, self.spec
        mode = spec.action_mode
        if mode not in DRONE_OUTPUTS:
            raise ConfigError(f"action mode {mode!r} cannot drive a quadrotor; expected one of {list(DRONE_OUTPUTS)}",
                              file=spec.file, path=("action", "mode"))
        output = p["output"] if p["output"] not in ("", "auto") else DRONE_OUTPUTS[mode]
        self.builder = ObservationBuilder(spec)
        if mode != "velocity":
            self.controller, self.adapter = setup_low_level(
                p, robot, spec, self.transport, self.builder, self.policy, self.safety, self.period, self.rate_hz,
                output, lambda key, robot_key, default: _topic(p, robot, key, robot_key, default))
        else:
            if spec.action_size not in (3, 4):
                raise ConfigError("a velocity policy has 3 or 4 components (vx, vy, vz[, yaw_rate])", file=spec.file,
                                  path=("action", "size"))
            self.controller = QuadController(spec, self.policy, self.builder, self.safety, self.period,
                                             p["px4.heartbeat_lead_s"])
            self.adapter = velocity_adapter(p, robot, self.transport, output, self.rate_hz, self.period)
        odom, imu, pose = (_topic(p, robot, k, k, "") for k in ("odometry", "imu", "pose"))
        if not odom and not pose:
            raise ConfigError("quadrotor needs topics.odometry or topics.pose", path=("topics",))
        t = self.transport
        self.state_topic = odom or pose
        if odom:
            t.subscribe(odom, "nav_msgs/msg/Odometry", self._on_odometry, sensor=True)
        elif pose:
            t.subscribe(pose, "geometry_msgs/msg/PoseStamped", self._on_pose, sensor=True)
        if imu:
            t.subscribe(imu, "sensor_msgs/msg/Imu", self._on_imu, sensor=True)

    # --- callbacks (transport threads) ----------------------------------------------------
    def _set_state(self, state: Any) -> None:
        with self._lock:
            self._state = state
            self.stats.states += 1
        # state trigger: run the control step right here on the transport thread (no thread
        # hand-off between observation arrival and command publish), on the first state at or
        # after the next slot of the policy-rate grid (slots one period apart; a state up to
        # STATE_SLOT_TOLERANCE periods early takes its slot), so a fast state stream never runs
        # the policy faster than it was trained
        if self._inline and state.arrival >= self._due - STATE_SLOT_TOLERANCE * self.period:
            due = self._due
            self._due = due + self.period if state.arrival - due < self.period else state.arrival + self.period
            try:
                self._safe_tick(state.arrival)
            except Exception:  # never raise into the middleware thread; run() re-raises it
                pass

    def _on_joint_state(self, msg: Any) -> None:
        state = self.reader.read(msg, time.monotonic())
        if state is None:
            key = tuple(msg.name)
            if key not in self._bad_states:  # log each bad name set once, not at the state rate
                self._bad_states.add(key)
                LOG.warning("%s: JointState without position for all of %s (got names %s); ignored",
                            self.state_topic, list(self.reader.names), list(key))
            return
        self._set_state(state)

    def _on_odometry(self, msg: Any) -> None:
        with self._lock:
            previous = self._state
        self._set_state(quad_state_from_odometry(msg, time.monotonic(), self.params["odometry.twist_frame"], previous))

    def _on_pose(self, msg: Any) -> None:
        with self._lock:
            previous = self._state
        self._set_state(update_quad_from_pose(previous, msg, time.monotonic(), differentiate=True))

    def _on_imu(self, msg: Any) -> None:
        if self._state is not None:  # IMU refines a pose estimate; it never creates one
            with self._lock:
                self._state = update_quad_from_imu(self._state, msg, self._state.arrival)

    def _on_goal(self, msg: Any) -> None:
        p = msg.pose.position
        with self._lock:
            self._goal = np.array([p.x, p.y, p.z], dtype=np.float64)

    def _on_estop(self, msg: Any) -> None:
        if msg.data:
            with self._lock:
                self.safety.latch_estop()

    def _on_resume(self, msg: Any) -> None:
        if msg.data:
            with self._lock:
                self.safety.request_resume()

    # --- loop ------------------------------------------------------------------------------
    def tick(self, now: float) -> StepResult | None:
        """One control step at monotonic time ``now`` (s): read state, step, publish."""
        with self._tick_lock:
            if now < self._last_tick:  # a concurrent tick already ran with a later time
                return None
            self._last_tick = now
            self.stats.tick(now)
            with self._lock:
                state, goal = self._state, self._goal
                stale = self.safety.is_stale(now, state.arrival if state is not None else None, self.period)
                fresh = state is not None and state.arrival != self._seen_arrival
                result = self.controller.step(now, state, goal, stale, fresh)
                if state is not None:
                    self._seen_arrival = state.arrival
            if result is not None:
                self.adapter.send(result.command, self.transport.now_ns())
                self.stats.commands += 1
                if result.engaged:
                    self.stats.latency.add(time.monotonic() - state.arrival)
                    self.stats.obs_age.add(now - state.arrival)
                    self.stats.inference.add(result.inference_s)
            if self.trace is not None:
                self.trace.append((now, state.arrival if state is not None else None, stale, result))
            return result

    def _safe_tick(self, now: float) -> None:
        """Tick; on an unexpected error stop the node (controllers keep their last command) and re-raise."""
        try:
            self.tick(now)
        except Exception as exc:
            LOG.error("control step failed, stopping: %s", exc)
            self._error = exc
            self.stop()
            raise

    def run(self, duration: float | None = None) -> dict[str, Any]:
        """Run the loop; returns :meth:`report`. ``duration`` (s) defaults to ``duration_s`` (0 = forever).

        ``trigger: timer`` ticks on an absolute fixed-rate schedule (a late tick does not
        shift the following ones). ``trigger: state`` ticks on each new state (on the
        transport thread) and, when states stop, every 1.5 periods here so the watchdog
        still trips and hold commands keep flowing.
        """
        duration = self.params["duration_s"] if duration is None else duration
        start = time.monotonic()
        end = start + duration if duration else math.inf
        diag_every = 1.0 / self.params["diagnostics.rate_hz"]
        next_diag = start + diag_every
        state_trigger = self.params["trigger"] == "state"
        LOG.info("deploying %s on %s at %.1f Hz over %s (%s trigger)", self.spec.env_id or self.spec.file,
                 self.robot.name, self.rate_hz, self.transport.kind, self.params["trigger"])
        self._last_tick = start - self.period
        self._due = start
        self._inline = state_trigger
        deadline = start
        try:
            while not self._stop.is_set():
                if state_trigger:
                    deadline = self._last_tick + 1.5 * self.period
                remaining = deadline - time.monotonic()
                if remaining > 0 and self._stop.wait(remaining):
                    break
                now = time.monotonic()
                if now >= end:
                    break
                if not state_trigger:
                    self._safe_tick(now)
                    deadline += self.period
                    if deadline < now:  # stalled for more than a period: skip the missed ticks
                        deadline = now + self.period
                elif now - self._last_tick >= 1.5 * self.period:
                    self._safe_tick(now)
                if now >= next_diag:
                    self.publish_diagnostics()
                    next_diag = now + diag_every
        finally:
            self._inline = False
            self.publish_exit_hold()
            try:
                self.publish_diagnostics()
            except Exception as exc:  # the middleware may already be gone; the exit must not fail here
                LOG.error("exit: could not publish diagnostics: %s", exc)
        if self._error is not None:
            raise self._error
        if self.stats.states == 0:
            LOG.warning("no robot state was received on %s: nothing was commanded", self.state_topic)
        return self.report()

    def stop(self) -> None:
        self._inline = False
        self._stop.set()

    def publish_exit_hold(self) -> None:
        """Leave the robot safe: publish the controller's exit command (arm position: the measured
        position; velocity: zeros; PX4: hold / level out with the offboard heartbeat stopped;
        Crazyswarm2: zero velocity at the current position). Called on every exit of :meth:`run`."""
        with self._tick_lock:
            self._inline = False
            self._last_tick = math.inf  # no tick after this one
            with self._lock:
                state = self._state
            try:
                command = self.controller.exit_command(state)
                if command is not None:
                    self.adapter.send(command, self.transport.now_ns())
                    self.stats.commands += 1
                    LOG.info("exit: published the hold command on %s", self.adapter.topic)
                    if hasattr(self.adapter, "release"):  # Crazyswarm2: hand over to the high-level commander
                        LOG.warning("exit: %s", self.adapter.release())
                else:
                    LOG.warning("exit: no state and no command yet, nothing to hold")
            except Exception as exc:  # the transport may already be gone (e.g. the middleware shut down)
                LOG.error("exit: could not publish the hold command: %s", exc)

    @property
    def phase(self) -> str:
        """What the node is doing: ``estopped``, ``holding: <fault>``, ``waiting_for_goal``, or the
        controller's phase (``waiting``, ``soft_start``, ``gate``, ``heartbeat``, ``running``)."""
        if self.safety.estopped:
            return "estopped"
        if self.safety.faulted is not None:
            how = "auto" if self.params["safety.resume"] == "auto" else f"resume on {self.resume_topic}"
            return f"holding: {self.safety.faulted} ({how})"
        if self.controller.phase == "running" and self.controller.goal_missing:
            return "waiting_for_goal"
        return self.controller.phase

    # --- reporting -------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {"stats": self.stats.summary(), "trips": self.safety.report(), "phase": self.phase}

    def publish_diagnostics(self) -> None:
        trips = self.safety.report()
        level = 2 if self.safety.estopped else (1 if any(trips[k] for k in trips if k not in ("clip", "held_ticks"))
                                                  else 0)
        values = self.stats.diagnostic_values() + [{"key": f"trips.{k}", "value": str(v)} for k, v in trips.items()]
        values.append({"key": "phase", "value": self.phase})
        ns = self.transport.now_ns()
        self._diag({"header": {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}},
                    "status": [{"level": level, "name": f"sim2real_deploy: {self.robot.name}",
                                "message": "e-stop latched" if self.safety.estopped else self.phase,
                                "hardware_id": self.robot.name, "values": values}]})

    def format_report(self) -> str:
        trips = ", ".join(f"{k} {v}" for k, v in self.safety.report().items())
        return f"{self.stats.format()}\nsafety trips: {trips}\nfinal phase: {self.phase}"

    def close(self) -> None:
        self.stop()
        self.transport.close()


def main(argv: list[str] | None = None) -> int:
    """``deploy_node`` console script; accepts ``--ros-args`` as launched by ``launch_ros``."""
    from sim2real.ros2.cli_args import run_from_argv

    return run_from_argv(argv, prog="deploy_node")
