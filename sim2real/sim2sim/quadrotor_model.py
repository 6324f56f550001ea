"""The quadrotor's airframe in MuJoCo: a free rigid body, four rotors with lag, drag and wind.

Frames: world ENU (z up), body FLU (x forward, y left, z up), quaternions ``xyzw`` at every
boundary (MuJoCo stores ``wxyz`` internally). Rotor order and geometry (X configuration,
rotors at ``(±L/√2, ±L/√2, 0)``):

| rotor | position | spin (seen from above) | reaction torque on the body |
| --- | --- | --- | --- |
| 0 | front-right (+x, −y) | counter-clockwise | −z |
| 1 | back-right (−x, −y) | clockwise | +z |
| 2 | back-left (−x, +y) | counter-clockwise | −z |
| 3 | front-left (+x, +y) | clockwise | +z |

(PX4's quadrotor-X: motor 1 front-right and 2 back-left spin counter-clockwise, 3 front-left
and 4 back-right clockwise.) Rotor ``i`` turning at ``ω_i`` rpm pushes ``kf·ω_i²`` N along
body +z at its hub and twists the body by ``spin_i·km·ω_i²`` N·m about body z. MuJoCo
applies both through one ``motor`` actuator per rotor on a hub site, gear
``(0, 0, 1, 0, 0, spin·km/kf)``, driven with the rotor thrust in N. The rotor speed follows
its command with a first-order lag ``ω̇ = (ω_cmd − ω)/τ`` (integrated exactly per step) and
is clipped to ``[0, max_rpm]``. Linear drag ``−D ⊙ v_body`` (N, body axes) and a constant
wind force (N, world) act at the centre of mass; gravity is MuJoCo's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from sim2real.robots import RobotDescription
from sim2real.ros2.drone import DroneModel

GRAVITY = 9.81
#: rotor hub x/y signs (times ``arm_length/√2``), rotor order above
ROTOR_XY = np.array([[1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
#: reaction-torque sign about body z per rotor: −1 for counter-clockwise rotors
ROTOR_SPIN = np.array([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Airframe:
    """Physical numbers of one quadrotor.

    ``mass`` kg (airframe without payload), ``inertia`` (3,) kg·m² diagonal about the
    airframe's centre of mass (body FLU), ``arm_length`` m (centre to rotor axis),
    ``kf`` N/rpm², ``km`` N·m/rpm², ``motor_tau`` s, ``max_rpm`` rpm, ``payload_mass`` kg
    rigidly attached at ``payload_offset`` (3,) m body FLU, ``drag`` (3,) N/(m/s) body
    x/y/z, ``wind_force`` (3,) N world.
    """

    mass: float
    inertia: np.ndarray
    arm_length: float
    kf: float
    km: float
    motor_tau: float
    max_rpm: float
    payload_mass: float = 0.0
    payload_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    drag: np.ndarray = field(default_factory=lambda: np.zeros(3))
    wind_force: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def total_mass(self) -> float:
        return self.mass + self.payload_mass

    @property
    def rotor_positions(self) -> np.ndarray:
        """Hub positions (4, 3) m, body FLU."""
        d = self.arm_length / math.sqrt(2.0)
        return np.column_stack([ROTOR_XY * d, np.zeros(4)])

    @property
    def hover_rpm(self) -> float:
        """Rotor speed (rpm) at which four rotors carry the total weight: ``sqrt(m g / (4 kf))``."""
        return math.sqrt(self.total_mass * GRAVITY / (4.0 * self.kf))


def nominal_airframe(robot: RobotDescription) -> Airframe:
    """The robot's datasheet numbers: robot.yaml ``model_params`` and the URDF inertials."""
    model = DroneModel.from_robot(robot)  # validates kf, km, max_rpm, arm_length and the mass
    tau = robot.model_params.get("motor_tau", 0.02)
    return Airframe(mass=model.mass, inertia=np.asarray(model.inertia, dtype=np.float64), arm_length=model.arm_length,
                    kf=model.kf, km=model.km, motor_tau=float(tau), max_rpm=model.max_rpm)


def _vec(v: np.ndarray) -> str:
    return " ".join(f"{float(x):.9g}" for x in v)


def airframe_mjcf(frame: Airframe, timestep: float) -> str:
    """MJCF text of the floor and the quadrotor (body ``quad`` with a free joint, rotor sites and actuators)."""
    half = frame.arm_length / math.sqrt(2.0) + 0.02  # collision box enclosing the rotors
    sites = "\n".join(f'      <site name="rotor{i}" pos="{_vec(p)}" size="0.005"/>'
                      for i, p in enumerate(frame.rotor_positions))
    ratio = frame.km / frame.kf
    thrust_max = frame.kf * frame.max_rpm**2
    actuators = "\n".join(
        f'    <motor name="rotor{i}" site="rotor{i}" gear="0 0 1 0 0 {ROTOR_SPIN[i] * ratio:.9g}" '
        f'ctrllimited="true" ctrlrange="0 {thrust_max:.9g}"/>' for i in range(4))
    payload = ""
    if frame.payload_mass > 0:
        payload = (f'      <body name="payload" pos="{_vec(frame.payload_offset)}">\n'
                   f'        <inertial pos="0 0 0" mass="{frame.payload_mass:.9g}" diaginertia="1e-9 1e-9 1e-9"/>\n'
                   f'      </body>')
    return f"""<mujoco model="quadrotor">
  <option timestep="{timestep:.9g}" gravity="0 0 {-GRAVITY}"/>
  <worldbody>
    <geom name="floor" type="plane" size="20 20 0.1" friction="0.8 0.005 0.0001"/>
    <body name="quad" pos="0 0 1">
      <freejoint name="root"/>
      <inertial pos="0 0 0" mass="{frame.mass:.9g}" diaginertia="{_vec(frame.inertia)}"/>
      <geom name="frame" type="box" size="{half:.6g} {half:.6g} 0.0125" contype="1" conaffinity="1"/>
      <site name="imu" pos="0 0 0" size="0.003"/>
{sites}
{payload}
    </body>
  </worldbody>
  <actuator>
{actuators}
  </actuator>
  <sensor>
    <gyro name="gyro" site="imu"/>
    <accelerometer name="accel" site="imu"/>
  </sensor>
</mujoco>
"""


@dataclass
class QuadState:
    """Position (3,) m world, orientation (4,) xyzw body→world, velocity (3,) m/s world,
    body rates (3,) rad/s FLU, specific force (3,) m/s² body (what an accelerometer reads),
    rotor speeds (4,) rpm."""

    position: np.ndarray
    orientation: np.ndarray
    velocity: np.ndarray
    body_rates: np.ndarray
    specific_force: np.ndarray
    rotor_rpm: np.ndarray

    @property
    def rotation(self) -> np.ndarray:
        """Body→world rotation matrix (3, 3)."""
        x, y, z, w = self.orientation
        out = np.empty(9)
        mujoco.mju_quat2Mat(out, np.array([w, x, y, z]))
        return out.reshape(3, 3)


class QuadrotorDynamics:
    """The airframe simulated by MuJoCo at ``physics_hz``; transport-free, usable in-process.

    ``command(rpm)`` sets the rotor speed commands (4,) rpm; ``step()`` advances one physics
    step (lag, rotor forces, drag, wind, contacts); ``state()`` reads the true state.
    """

    def __init__(self, frame: Airframe, physics_hz: float) -> None:
        self.frame, self.dt = frame, 1.0 / physics_hz
        self.model = mujoco.MjModel.from_xml_string(airframe_mjcf(frame, self.dt))
        self.data = mujoco.MjData(self.model)
        self.body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "quad")
        self.floor = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._lag = 1.0 - math.exp(-self.dt / frame.motor_tau) if frame.motor_tau > 0 else 1.0
        self.rpm = np.zeros(4)
        self.rpm_cmd = np.zeros(4)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def reset(self, position: np.ndarray, yaw: float = 0.0, rotor_rpm: float | None = None) -> None:
        """Place the body at ``position`` (3,) m world with heading ``yaw`` rad, at rest; rotors at
        ``rotor_rpm`` (default: the hover speed)."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:3] = position
        self.data.qpos[3:7] = Rotation.from_euler("z", yaw).as_quat(scalar_first=True)  # MuJoCo: wxyz
        rpm = self.frame.hover_rpm if rotor_rpm is None else rotor_rpm
        self.rpm[:] = self.rpm_cmd[:] = min(rpm, self.frame.max_rpm)
        self._apply()
        mujoco.mj_forward(self.model, self.data)

    def command(self, rpm: np.ndarray) -> None:
        """Rotor speed commands (4,) rpm (rotor order of the module docstring); clipped to [0, max_rpm]."""
        rpm = np.asarray(rpm, dtype=np.float64)
        self.rpm_cmd = np.clip(np.where(np.isnan(rpm), 0.0, rpm), 0.0, self.frame.max_rpm)

    def _apply(self) -> None:
        self.data.ctrl[:] = self.frame.kf * self.rpm**2
        rot = self.data.xmat[self.body].reshape(3, 3)
        v_body = rot.T @ self.data.qvel[:3]
        force = rot @ (-self.frame.drag * v_body) + self.frame.wind_force
        self.data.xfrc_applied[self.body, :3] = force

    def step(self) -> None:
        self.rpm += self._lag * (self.rpm_cmd - self.rpm)
        self._apply()
        mujoco.mj_step(self.model, self.data)

    def state(self) -> QuadState:
        d = self.data
        w, x, y, z = d.qpos[3:7]
        return QuadState(position=d.qpos[:3].copy(), orientation=np.array([x, y, z, w]), velocity=d.qvel[:3].copy(),
                         body_rates=d.qvel[3:6].copy(), specific_force=d.sensor("accel").data.copy(),
                         rotor_rpm=self.rpm.copy())

    def rotor_wrench(self) -> np.ndarray:
        """Total rotor force and torque ``[F_z, τx, τy, τz]`` (N, N·m, body FLU) at the current rotor speeds."""
        thrust = self.frame.kf * self.rpm**2
        pos = self.frame.rotor_positions
        return np.array([thrust.sum(), float(pos[:, 1] @ thrust), float(-pos[:, 0] @ thrust),
                         float((ROTOR_SPIN * self.frame.km / self.frame.kf) @ thrust)])

    def floor_contact(self) -> bool:
        """True when the airframe touches the floor."""
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            if self.floor in (c.geom1, c.geom2):
                return True
        return False


def airframe_from_params(nominal: Airframe, params: Mapping[str, Any]) -> Airframe:
    """The true airframe: ``nominal`` changed by a hardware file's ``body``/``rotors``/``aero`` values."""
    body, rotors, aero = params["body"], params["rotors"], params["aero"]
    return Airframe(
        mass=nominal.mass * body["mass_factor"], inertia=nominal.inertia * body["inertia_factor"],
        arm_length=nominal.arm_length, kf=nominal.kf * rotors["kf_factor"], km=nominal.km * rotors["km_factor"],
        motor_tau=rotors["motor_tau"], max_rpm=rotors["max_rpm"] or nominal.max_rpm,
        payload_mass=body["payload_mass"], payload_offset=np.asarray(body["payload_offset"], dtype=np.float64),
        drag=np.asarray(aero["drag"], dtype=np.float64), wind_force=np.asarray(aero["wind_force"], dtype=np.float64))
