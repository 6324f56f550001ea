"""Forward kinematics from a URDF in pure numpy (no PyBullet on the robot computer).

Supports ``revolute``, ``continuous``, ``prismatic`` and ``fixed`` joints with
``<origin xyz rpy>`` and ``<axis xyz>``, which is what serial arms need. Poses are in the
URDF root link's frame (the robot base frame); positions in metres, rotations as 3×3
matrices.

:meth:`UrdfChain.describe` writes the chain from the root to one link as plain data (the
exported policy's sidecar ``kinematics`` section) and :meth:`UrdfChain.from_description`
rebuilds it, so the deployment node needs no URDF file or URDF package::

    kinematics:
      root: lbr_iiwa_link_0                # URDF root link (robot base frame)
      link: lbr_iiwa_link_7                # end-effector link
      joints:                              # root first; origin at q = 0 in the parent link frame
        - {name: lbr_iiwa_joint_1, type: revolute, parent: lbr_iiwa_link_0, child: lbr_iiwa_link_1,
           xyz: [0, 0, 0.1575], rpy: [0, 0, 0], axis: [0, 0, 1]}
        - ...
      com: {xyz: [...], rpy: [...]}        # the link's inertial origin (kinematics.ee_com)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sim2real.errors import ConfigError, RobotError

_MOVING = ("revolute", "continuous", "prismatic")
_I3 = np.eye(3)
_I3.setflags(write=False)


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of URDF roll-pitch-yaw (fixed axes X, then Y, then Z)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix (3, 3) of ``angle`` rad about unit vector ``axis`` (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _transform(rot: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = pos
    return out


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray  # (4, 4) parent link frame → joint frame at q = 0
    axis: np.ndarray  # (3,) unit vector in the joint frame
    xyz: tuple[float, ...] = (0.0, 0.0, 0.0)  # the origin as written: metres
    rpy: tuple[float, ...] = (0.0, 0.0, 0.0)  # and roll-pitch-yaw, rad


class UrdfChain:
    """Kinematic tree of a URDF; :meth:`link_pose` gives a link's pose in the root frame.

    :param urdf: path to the URDF file.
    """

    def __init__(self, urdf: str | Path) -> None:
        self.file = str(urdf)
        try:
            root = ET.parse(self.file).getroot()
        except (OSError, ET.ParseError) as exc:
            raise RobotError(f"cannot read URDF: {exc}", file=self.file) from None
        links = [el.get("name", "") for el in root.findall("link")]
        inertial = {el.get("name", ""): self._xyz_rpy(el.find("inertial/origin")) for el in root.findall("link")}
        joints = []
        for el in root.findall("joint"):
            name, jtype = el.get("name", ""), el.get("type", "")
            parent, child = el.find("parent"), el.find("child")
            if parent is None or child is None or jtype not in (*_MOVING, "fixed", "floating", "planar"):
                raise RobotError(f"joint {name!r}: expected parent, child and a known type", file=self.file)
            axis_el = el.find("axis")
            axis = [float(v) for v in (axis_el.get("xyz", "1 0 0") if axis_el is not None else "1 0 0").split()]
            xyz, rpy = self._xyz_rpy(el.find("origin"))
            joints.append({"name": name, "type": jtype, "parent": parent.get("link", ""),
                           "child": child.get("link", ""), "xyz": xyz, "rpy": rpy, "axis": axis})
        self._build(links, joints, inertial)

    def _build(self, links: list[str], joints: list[dict], inertial: Mapping[str, tuple[list, list]]) -> None:
        self.links: set[str] = set(links)
        self.inertial_origin: dict[str, np.ndarray] = {
            link: _transform(rpy_matrix(rpy), np.array(xyz, dtype=float)) for link, (xyz, rpy) in inertial.items()}
        self._inertial_xyz_rpy = dict(inertial)
        self.joints: dict[str, UrdfJoint] = {}
        self._parent_joint: dict[str, UrdfJoint] = {}
        for j in joints:
            axis = np.asarray(j["axis"], dtype=float)
            norm = np.linalg.norm(axis)
            xyz, rpy = tuple(float(v) for v in j["xyz"]), tuple(float(v) for v in j["rpy"])
            joint = UrdfJoint(j["name"], j["type"], j["parent"], j["child"],
                              _transform(rpy_matrix(rpy), np.array(xyz)), axis / norm if norm > 0 else axis, xyz, rpy)
            self.joints[joint.name] = joint
            self._parent_joint[joint.child] = joint
        roots = [link for link in self.links if link not in self._parent_joint]
        if len(roots) != 1:
            raise RobotError(f"expected one root link, found {sorted(roots)}", file=self.file)
        self.root = roots[0]
        self._chains: dict[str, list[UrdfJoint]] = {}
        self._compiled_chains: dict[str, tuple] = {}

    def describe(self, link: str) -> dict:
        """The chain from the root to ``link`` as plain data (module docstring), for the policy sidecar."""
        xyz, rpy = self._inertial_xyz_rpy.get(link, ([0.0] * 3, [0.0] * 3))
        return {"root": self.root, "link": link,
                "joints": [{"name": j.name, "type": j.type, "parent": j.parent, "child": j.child, "xyz": list(j.xyz),
                            "rpy": list(j.rpy), "axis": [float(v) for v in j.axis]} for j in self.chain(link)],
                "com": {"xyz": [float(v) for v in xyz], "rpy": [float(v) for v in rpy]}}

    @classmethod
    def from_description(cls, desc: Mapping, file: str = "<sidecar>") -> "UrdfChain":
        """Rebuild the chain written by :meth:`describe` (validated by the sidecar parser)."""
        chain = cls.__new__(cls)
        chain.file = file
        joints = list(desc["joints"])
        links = [str(desc["root"])] + [str(j["child"]) for j in joints]
        com = desc.get("com") or {}
        inertial = {str(desc["link"]): (list(com.get("xyz", [0.0] * 3)), list(com.get("rpy", [0.0] * 3)))}
        chain._build(links, joints, inertial)
        return chain

    @staticmethod
    def _xyz_rpy(el: ET.Element | None) -> tuple[list[float], list[float]]:
        if el is None:
            return [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
        return ([float(v) for v in el.get("xyz", "0 0 0").split()], [float(v) for v in el.get("rpy", "0 0 0").split()])

    def chain(self, link: str) -> list[UrdfJoint]:
        """Joints from the root down to ``link`` (root first)."""
        if link not in self._chains:
            if link not in self.links:
                raise RobotError(f"link {link!r} not in the URDF", file=self.file)
            joints: list[UrdfJoint] = []
            cur = link
            while cur in self._parent_joint:
                joint = self._parent_joint[cur]
                if joint.type in ("floating", "planar"):
                    raise RobotError(f"joint {joint.name!r}: {joint.type} joints are not supported", file=self.file)
                joints.append(joint)
                cur = joint.parent
            self._chains[link] = joints[::-1]
        return self._chains[link]

    def _compiled(self, link: str) -> tuple[list[str], np.ndarray, ...]:
        """Arrays of the chain to ``link`` (n joints): names, moving/revolute/prismatic masks (n,),
        origin rotations (n, 3, 3), origin offsets (n, 3), axis cross-product matrices K and K @ K
        (n, 3, 3), and prismatic directions in the parent frame (n, 3)."""
        if link not in self._compiled_chains:
            chain = self.chain(link)
            names = [j.name for j in chain]
            moving = np.array([j.type in _MOVING for j in chain], dtype=float)
            prismatic = np.array([j.type == "prismatic" for j in chain], dtype=float)
            revolute = moving - prismatic
            r_o = np.array([j.origin[:3, :3] for j in chain]).reshape(-1, 3, 3)
            p_o = np.array([j.origin[:3, 3] for j in chain]).reshape(-1, 3)
            k = np.array([[[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]] for x, y, z in (j.axis for j in chain)])
            k = k.reshape(-1, 3, 3)
            direction = np.einsum("nij,nj->ni", r_o, np.array([j.axis for j in chain]).reshape(-1, 3))
            self._compiled_chains[link] = (names, moving, revolute, prismatic, r_o, p_o, k, k @ k, direction)
        return self._compiled_chains[link]

    def link_transform(self, q: Mapping[str, float], link: str, *, com: bool = False) -> np.ndarray:
        """Homogeneous transform (4, 4) of ``link``'s frame in the root frame.

        :param q: joint positions by URDF joint name (rad or m); joints not given are at 0.
        :param com: return the link's inertial (centre-of-mass) frame instead of its link frame.
        """
        names, moving, revolute, prismatic, r_o, p_o, k, kk, direction = self._compiled(link)
        values = np.array([q.get(name, 0.0) for name in names], dtype=float) * moving
        # all joint rotations at once (Rodrigues; identity for fixed and prismatic joints) ...
        rq = _I3 + (np.sin(values) * revolute)[:, None, None] * k + ((1.0 - np.cos(values)) * revolute)[:, None, None] * kk
        steps = r_o @ rq
        offsets = p_o + direction * (values * prismatic)[:, None]
        rot, pos = _I3, np.zeros(3)
        for j in range(len(names)):  # ... then down the chain
            pos = pos + rot @ offsets[j]
            rot = rot @ steps[j]
        out = _transform(rot, pos)
        if com:
            out = out @ self.inertial_origin.get(link, np.eye(4))
        return out

    def link_position(self, q: Mapping[str, float], link: str, *, com: bool = False) -> np.ndarray:
        """Position (3,) of ``link`` in the root frame, metres."""
        return self.link_transform(q, link, com=com)[:3, 3].copy()


def policy_chain(kinematics: Mapping | None, robot: Any, file: str = "<sidecar>") -> tuple[UrdfChain, str]:
    """Forward kinematics of an arm policy and its end-effector link.

    ``kinematics``: the sidecar's ``kinematics`` section (written by ``sim2real export``; no URDF
    needed). Without it, the robot's URDF (robot.yaml ``model``) and ``end_effector_link``;
    a URDF that comes from ``pybullet_data`` needs PyBullet installed.
    """
    if kinematics is not None:
        chain = UrdfChain.from_description(kinematics, file)
        link = str(kinematics["link"])
        moving = [j.name for j in chain.chain(link) if j.type in _MOVING]
        unknown = [name for name in moving if name not in robot.joint_names]
        if unknown:
            raise ConfigError(f"kinematics joints {unknown} are not joints of {robot.name} ({robot.joint_names})",
                              file=file, path=("kinematics", "joints"))
        return chain, link
    if not robot.end_effector_link:
        raise ConfigError(f"{robot.name} has no end_effector_link for ee_position/target_delta", file=str(robot.file))
    try:
        return UrdfChain(robot.model_path()), robot.end_effector_link
    except ImportError as exc:
        raise ConfigError(f"the policy observes the end effector but its sidecar has no 'kinematics' section and "
                          f"{robot.name}'s URDF comes from {robot.model.source} ({exc.name} is not installed): "
                          "re-export the policy with `sim2real export`, which writes the kinematic chain into "
                          "the sidecar", file=file) from None
