"""A :class:`PhysicsWorld` flown by the rotor model of :mod:`sim2real.sim.quadrotor`.

PyBullet clears external forces after every ``stepSimulation``, so the rotor forces must be
applied inside the physics-step loop: this subclass runs the rotor model (and the rate /
velocity controllers) from ``PhysicsWorld.physics_step_hook``, so ``PhysicsWorld.step`` keeps
doing the latency queue, pushes and observation capture, and turns the world's
joint-command plumbing into rotor commands.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from sim2real.errors import RobotError
from sim2real.robots import RobotDescription
from sim2real.sim.quadrotor import (
    BaseState,
    BodyRateController,
    QuadrotorDynamics,
    RotorParams,
    VelocityController,
    configure_body,
)
from sim2real.sim.world import PhysicsWorld

QUAD_MODES = ("motor", "thrust_rates", "velocity")


class QuadrotorWorld(PhysicsWorld):
    """A :class:`PhysicsWorld` whose robot is flown by :class:`QuadrotorDynamics`.

    World commands (``step``), by ``mode``:

    - ``motor``: rotor-speed commands (4,), rpm;
    - ``thrust_rates``: ``[F, p, q, r]``, collective thrust (N) and body rates (rad/s), turned
      into rotor speeds at every physics step by :attr:`rate_controller`;
    - ``velocity``: ``[vx, vy, vz, yaw_rate]``, world velocity setpoint (m/s) and yaw rate
      (rad/s), tracked by :attr:`velocity_controller` feeding :attr:`rate_controller`.

    Commands go through the world's action-latency queue like joint commands do. Before each
    ``stepSimulation`` the rotor model advances and applies its forces; pushes still apply.
    Call :meth:`sync_model` after randomization (each reset) so the rotor model reads the
    episode's ``model_params`` and the (possibly rebuilt) body.
    """

    def __init__(self, robot: RobotDescription, *, mode: str | None = None, floor: bool = True) -> None:
        if robot.kind != "quadrotor":
            raise RobotError(f"robot {robot.name!r} is a {robot.kind!r}, not a quadrotor", file=str(robot.file),
                             path=("kind",))
        self.nominal_rotor = RotorParams.from_mapping(robot.model_params, file=str(robot.file))
        self.rate_controller: BodyRateController | None = None
        self.velocity_controller: VelocityController | None = None
        self.rotors: QuadrotorDynamics | None = None
        self.active = np.zeros(4)
        super().__init__(robot, floor=floor)
        self.mode = mode or robot.control.mode
        if self.mode not in QUAD_MODES:
            raise RobotError(f"control mode {self.mode!r} does not fly a quadrotor; expected one of {list(QUAD_MODES)}",
                             file=str(robot.file), path=("control", "mode"))
        configure_body(self.client, self.robot_id)
        self.rotors = QuadrotorDynamics(self.client, self.robot_id, self.nominal_rotor, self.physics_dt)
        if self.mode in ("thrust_rates", "velocity"):
            self.rate_controller = make_rate_controller(robot, self.nominal_rotor, self.nominal_inertia(),
                                                        self.physics_dt)
        if self.mode == "velocity":
            self.velocity_controller = make_velocity_controller(robot, self.mass(), self.gravity_norm(),
                                                                self.physics_dt)
        self.active = np.zeros(4)
        #: (physics_step_count, robot_id, :data:`BaseState`) read right after the last physics step of
        #: the last :meth:`step` (when it ran in runs); valid right after that step only (a reset
        #: moves the body without stepping): a reader checks the first two against the world's
        self.base_state: tuple[int, int, BaseState | None] = (-1, -1, None)
        # one bound method (identity checked here and by PhysicsWorld)
        self.physics_step_hook = self.push_hook = self._own_hook = self._rotor_step

    def nominal_inertia(self) -> np.ndarray:
        """Base inertia diagonal of the model before randomization (3,), kg·m²."""
        return np.asarray(self.nominal["links"]["base"]["inertia"], dtype=float)

    def mass(self) -> float:
        """Current total mass (kg), randomized link masses included."""
        return float(sum(d["mass"] for name, d in self.current["links"].items() if name != "floor"))

    def gravity_norm(self) -> float:
        return float(np.linalg.norm(self.current["gravity"]))

    def sync_model(self) -> RotorParams:
        """Point the rotor model at the current body and this episode's ``model_params``."""
        params = RotorParams.from_mapping(self.model_params, file=str(self.robot.file))
        assert self.rotors is not None
        self.rotors.attach(self.robot_id)
        self.rotors.set_params(params)
        self.rotors.prepare()  # the per-episode constants now, not in the episode's first step
        configure_body(self.client, self.robot_id)
        for ctrl in (self.rate_controller, self.velocity_controller):
            if ctrl is not None:
                ctrl.reset()
        return params

    def hold(self) -> None:
        """Clear queued commands; the rotors keep their current command."""
        self._queue.clear()

    def _issue(self, cmd: np.ndarray | list[float]) -> None:
        if type(cmd) is list:  # 4 floats (``active`` is built on demand)
            if len(cmd) != 4:
                return
            self._active, self._active_list = None, cmd
            values: np.ndarray | list[float] = cmd
        else:
            values = np.asarray(cmd, dtype=float).reshape(-1)
            if values.size != 4:  # PhysicsWorld issues empty joint commands for a joint-less robot
                return
            self.active = values
        if self.mode == "motor" and self.rotors is not None:
            self.rotors.command_rpm(values)

    def _step_per_physics_step(self, capture_at: int, capture: Callable[[], None] | None) -> None:
        """:meth:`PhysicsWorld._step_per_physics_step` in runs: the physics steps between two
        events (a queued command becoming active, the end of a push, the observation capture)
        go to :meth:`QuadrotorDynamics.run` (the compiled kernel) in one call.
        Same calls and values as the per-physics-step hook; pushes on other links than the base
        and a replaced :attr:`physics_step_hook` take that hook path."""
        pushes = self.pushes
        rotors = self.rotors
        if (rotors is None or self.physics_step_hook is not self._own_hook
                or (pushes and (len(pushes) != 1 or pushes[0].link >= 0))):
            super()._step_per_physics_step(capture_at, capture)
            return
        queue, substeps, ctrl, vctrl = self._queue, self.substeps, self.rate_controller, self.velocity_controller
        count = self.physics_step_count
        k = 0
        while k < substeps:
            if queue and queue[0][0] <= count:
                self._activate_due(count)
            stop = self._run_end(k, count, capture_at, capture)
            push = self.pushes[0] if self.pushes else None
            if push is not None and push.steps_left < stop - k:
                stop = k + push.steps_left
            n = stop - k
            command = None
            if ctrl is not None:
                command = self._active_list
                if command is None:  # an array command (callers may also assign .active)
                    command = self._active_list = np.asarray(self._active, dtype=float).reshape(-1).tolist()
            last = stop == substeps
            if push is None:
                state = rotors.run(n, ctrl, command, None, None, last, vctrl)
            else:
                state = rotors.run(n, ctrl, command, push.force_list, push.torque_list, last, vctrl)
                push.steps_left -= n
                if push.steps_left <= 0:
                    self.pushes = []
            count += n
            k = stop
            self.physics_step_count = count
            if last:
                self.base_state = (count, self.robot_id, state)
            if capture is not None and k == capture_at:
                capture()

    def _rotor_step(self, extra_force: Sequence[float] | None = None,
                    extra_torque: Sequence[float] | None = None) -> None:
        """The :attr:`physics_step_hook`: controllers (if any) and rotor forces for one physics step.

        The base state is read once per physics step and shared by the controllers and the
        rotor model (nothing moves the body between them). ``extra_force`` / ``extra_torque``
        (world frame, N / N·m: a push on the base, :attr:`PhysicsWorld.push_hook`) are applied
        with the rotor resultant (:meth:`QuadrotorDynamics.run` with ``advance=False``)."""
        rotors = self.rotors
        assert rotors is not None
        command = None
        if self.rate_controller is not None:
            command = self._active_list
            if command is None:  # an array command (callers may also assign .active)
                command = self._active_list = np.asarray(self._active, dtype=float).reshape(-1).tolist()
        rotors.run(1, self.rate_controller, command, extra_force, extra_torque, False, self.velocity_controller,
                   advance=False)


def _config_vector(robot: RobotDescription, section: str, key: str, default: Sequence[float],
                   size: int = 3) -> np.ndarray:
    """``model_params.<section>.<key>``: ``size`` non-negative numbers (one is broadcast)."""
    cfg = robot.model_params.get(section, {})
    if not isinstance(cfg, dict):
        raise RobotError("expected a mapping", file=str(robot.file), path=("model_params", section))
    raw = cfg.get(key, default)
    try:
        arr = np.asarray(raw, dtype=float) if not isinstance(raw, (str, bool, dict)) else None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.size not in (1, size) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise RobotError(f"expected {size} non-negative number(s), got {raw!r}", file=str(robot.file),
                         path=("model_params", section, key))
    return np.broadcast_to(arr.reshape(-1), (size,)).copy()


def make_velocity_controller(robot: RobotDescription, mass: float, gravity: float,
                             physics_dt: float) -> VelocityController:
    """The velocity loop of ``model_params.velocity_controller`` (``kp``, ``ki``, ``integral_limit``,
    ``attitude_gain``, ``max_tilt``)."""
    def vec(key: str, default: Sequence[float], size: int = 3) -> np.ndarray:
        return _config_vector(robot, "velocity_controller", key, default, size)

    return VelocityController(mass, vec("kp", (4.0, 4.0, 6.0)), vec("ki", (1.0, 1.0, 8.0)),
                              float(vec("attitude_gain", (8.0,), 1)[0]), float(vec("max_tilt", (0.5,), 1)[0]),
                              physics_dt, gravity=gravity, integral_limit=float(vec("integral_limit", (1.5,), 1)[0]))


def make_rate_controller(robot: RobotDescription, params: RotorParams, inertia: Sequence[float],
                         physics_dt: float) -> BodyRateController:
    """The body-rate PID of ``model_params.rate_controller`` (``kp``, ``ki``, ``kd``, ``integral_limit``)."""
    def vec(key: str, default: Sequence[float], size: int = 3) -> np.ndarray:
        return _config_vector(robot, "rate_controller", key, default, size)

    return BodyRateController(params, inertia, vec("kp", (25.0, 25.0, 12.0)), vec("ki", (5.0, 5.0, 2.0)),
                              vec("kd", (0.0, 0.0, 0.0)), physics_dt=physics_dt,
                              integral_limit=float(vec("integral_limit", (0.5,), 1)[0]))
