"""Forward kinematics from a URDF in pure numpy (no PyBullet on the robot computer).

Supports ``revolute``, ``continuous``, ``prismatic`` and ``fixed`` joints with
``<origin xyz rpy>`` and ``<axis xyz>``, which is what serial arms need. Poses are in the
URDF root link's frame (the robot base frame); positions in metres, rotations as 3×3
matrices.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sim2real.errors import RobotError

_MOVING = ("revolute", "continuous", "prismatic")


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
        self.links: set[str] = {el.get("name", "") for el in root.findall("link")}
        self.inertial_origin: dict[str, np.ndarray] = {}
        for el in root.findall("link"):
            origin = el.find("inertial/origin")
            self.inertial_origin[el.get("name", "")] = self._origin(origin)
        self.joints: dict[str, UrdfJoint] = {}
        self._parent_joint: dict[str, UrdfJoint] = {}
        for el in root.findall("joint"):
            name, jtype = el.get("name", ""), el.get("type", "")
            parent, child = el.find("parent"), el.find("child")
            if parent is None or child is None or jtype not in (*_MOVING, "fixed", "floating", "planar"):
                raise RobotError(f"joint {name!r}: expected parent, child and a known type", file=self.file)
            axis_el = el.find("axis")
            axis = np.array([float(v) for v in (axis_el.get("xyz", "1 0 0") if axis_el is not None else "1 0 0").split()])
            norm = np.linalg.norm(axis)
            joint = UrdfJoint(name, jtype, parent.get("link", ""), child.get("link", ""),
                              self._origin(el.find("origin")), axis / norm if norm > 0 else axis)
            self.joints[name] = joint
            self._parent_joint[joint.child] = joint
        roots = [link for link in self.links if link not in self._parent_joint]
        if len(roots) != 1:
            raise RobotError(f"expected one root link, found {sorted(roots)}", file=self.file)
        self.root = roots[0]
        self._chains: dict[str, list[UrdfJoint]] = {}
        self._compiled_chains: dict[str, list] = {}

    @staticmethod
    def _origin(el: ET.Element | None) -> np.ndarray:
        if el is None:
            return np.eye(4)
        xyz = [float(v) for v in el.get("xyz", "0 0 0").split()]
        rpy = [float(v) for v in el.get("rpy", "0 0 0").split()]
        return _transform(rpy_matrix(rpy), np.array(xyz))

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

    def _compiled(self, link: str) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per joint: (name, type, R_origin, p_origin, axis, K, K @ K) — K is the axis' cross-product matrix."""
        if link not in self._compiled_chains:
            steps = []
            for joint in self.chain(link):
                x, y, z = joint.axis
                k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
                steps.append((joint.name, joint.type, joint.origin[:3, :3].copy(), joint.origin[:3, 3].copy(),
                              joint.axis, k, k @ k))
            self._compiled_chains[link] = steps
        return self._compiled_chains[link]

    def link_transform(self, q: Mapping[str, float], link: str, *, com: bool = False) -> np.ndarray:
        """Homogeneous transform (4, 4) of ``link``'s frame in the root frame.

        :param q: joint positions by URDF joint name (rad or m); joints not given are at 0.
        :param com: return the link's inertial (centre-of-mass) frame instead of its link frame.
        """
        rot, pos = np.eye(3), np.zeros(3)
        for name, jtype, r_o, p_o, axis, k, kk in self._compiled(link):
            pos = pos + rot @ p_o
            rot = rot @ r_o
            if jtype in _MOVING:
                value = float(q.get(name, 0.0))
                if jtype == "prismatic":
                    pos = pos + rot @ (axis * value)
                else:
                    rot = rot @ (np.eye(3) + np.sin(value) * k + (1.0 - np.cos(value)) * kk)
        out = _transform(rot, pos)
        if com:
            out = out @ self.inertial_origin.get(link, np.eye(4))
        return out

    def link_position(self, q: Mapping[str, float], link: str, *, com: bool = False) -> np.ndarray:
        """Position (3,) of ``link`` in the root frame, metres."""
        return self.link_transform(q, link, com=com)[:3, 3].copy()
