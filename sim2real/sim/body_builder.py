"""Rebuild a loaded PyBullet body with moved centres of mass (``com_offset``).

PyBullet fixes a link's inertial frame when the body is created (``changeDynamics`` has
no COM argument), and re-loading the URDF re-parses its meshes (~30 ms for the iiwa).
:class:`BodyBuilder` reads the loaded body once — joint frames, axes, limits, masses,
inertial frames, collision and visual shapes — creates the shapes once, and then builds
copies with ``createMultiBody``, each with its inertial frame origins shifted by the
requested offsets (metres, in the link frame). Geometry, joint frames and the link frames
stay where they were; only the COM moves, as when the ``<inertial><origin>`` of a URDF is
edited.

What dominates a build is not the physics but PyBullet's renderer: ``createMultiBody``
hands every link's visual shapes (or, for a link without one, its collision meshes, re-read
from disk) to the TinyRenderer converter, which copies each mesh triangle by triangle —
~15 ms for the iiwa's STL collision meshes, ~5 ms for the Panda. Hence three visual modes:

* ``"model"``: the loaded model's visual shapes (what a camera should see; slowest);
* ``"collision"``: no visual shapes, PyBullet renders the collision meshes (the default);
* ``"none"``: every link gets one shared invisible 0.1 mm box, so nothing is converted
  (~0.3 ms per build). Physics is identical in all three modes; use it when nothing
  renders the robot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p

VISUAL_MODES = ("model", "collision", "none")


def _compose(a_pos: Any, a_orn: Any, b_pos: Any, b_orn: Any) -> tuple[tuple, tuple]:
    return p.multiplyTransforms(a_pos, a_orn, b_pos, b_orn)


class BodyBuilder:
    """Template of body ``body_id`` in client ``client`` that can be instantiated with COM offsets.

    ``shapes=False`` reads the kinematics and inertial frames only (no collision or visual
    shapes): its bodies have no geometry and may be built in another client (``build(client=)``),
    e.g. for PyBullet's mass matrix and inverse dynamics of a copy of the robot."""

    def __init__(self, client: int, body_id: int, visuals: str | bool = "collision", *, shapes: bool = True) -> None:
        self.client = cid = client
        self._body = body_id
        n = p.getNumJoints(body_id, physicsClientId=cid)
        self.n = n
        base_pos, base_orn = p.getBasePositionAndOrientation(body_id, physicsClientId=cid)
        dyn = [p.getDynamicsInfo(body_id, i, physicsClientId=cid) for i in range(-1, n)]
        # inertial frame (COM) of each link in its link frame: index i+1 for link i
        self.inertial = [(d[3], d[4]) for d in dyn]
        self.masses = [d[0] for d in dyn]
        # the base's world pose is reported for its inertial frame; recover the link frame
        inv_pos, inv_orn = p.invertTransform(*self.inertial[0])
        self.base_pos, self.base_orn = _compose(base_pos, base_orn, inv_pos, inv_orn)
        self.fixed_base = self.masses[0] == 0.0
        infos = [p.getJointInfo(body_id, j, physicsClientId=cid) for j in range(n)]
        self.parents = [i[16] for i in infos]
        self.types = [i[2] for i in infos]
        self.limits = [(i[8], i[9], i[10], i[11]) for i in infos]
        self.link_pos, self.link_orn, self.axes = [], [], []
        for j, info in enumerate(infos):
            parent_inertial = self.inertial[info[16] + 1]
            # getJointInfo gives the joint frame in the parent's inertial frame, its rotation inverted
            x, y, z, w = info[15]
            pos, orn = _compose(*parent_inertial, info[14], (-x, -y, -z, w))
            self.link_pos.append(pos)
            self.link_orn.append(orn)
            # the axis is reported in the child's inertial frame; createMultiBody wants the link frame
            rot = np.array(p.getMatrixFromQuaternion(self.inertial[j + 1][1])).reshape(3, 3)
            self.axes.append(tuple(rot @ np.asarray(info[13])))
        self.shapes = shapes
        self.collision = [self._collision_shape(body_id, i) if shapes else -1 for i in range(-1, n)]
        self._visuals: dict[str, list[int]] = {}
        self.visual_mode = self._check_mode(visuals if shapes else "collision")
        self.visuals(self.visual_mode)  # read the model's visual shapes now, while the body exists

    @staticmethod
    def _check_mode(mode: str | bool) -> str:
        if isinstance(mode, bool):  # older API: True = the model's visuals, False = none given
            return "model" if mode else "collision"
        if mode not in VISUAL_MODES:
            raise ValueError(f"unknown visual mode {mode!r}; expected one of {list(VISUAL_MODES)}")
        return mode

    def visuals(self, mode: str) -> list[int]:
        """Visual shape index per link (index i+1 for link i) for a visual ``mode`` (created once)."""
        mode = self._check_mode(mode)
        if mode not in self._visuals:
            if mode == "model":
                try:
                    self._visuals[mode] = [self._visual_shape(self._body, i) for i in range(-1, self.n)]
                except p.error:  # the original body is gone: nothing left to copy the looks from
                    self._visuals[mode] = [-1] * (self.n + 1)
            elif mode == "collision":
                self._visuals[mode] = [-1] * (self.n + 1)
            else:
                box = p.createVisualShape(p.GEOM_BOX, halfExtents=[1e-4] * 3, rgbaColor=[0.0, 0.0, 0.0, 0.0],
                                          physicsClientId=self.client)
                self._visuals[mode] = [box] * (self.n + 1)
        return self._visuals[mode]

    def _shape_arrays(self, data: list, link: int, frame: str) -> dict[str, list]:
        """Keyword lists of ``create{Collision,Visual}ShapeArray`` for PyBullet shape records.

        Collision and visual records share the layout ``(body, link, geom, dims, file, pos, orn,
        ...)``; their frames are reported in the inertial frame, so they are re-expressed in the
        link frame the rebuilt body uses. ``frame`` is ``collision`` or ``visual``.
        """
        kw: dict[str, list] = {k: [] for k in ("shapeTypes", "radii", "halfExtents", "lengths", "fileNames",
                                              "meshScales", f"{frame}FramePositions",
                                              f"{frame}FrameOrientations")}
        inertial = self.inertial[link + 1]
        for d in data:
            geom, dims, fname = d[2], d[3], d[4]
            fname = fname.decode() if isinstance(fname, bytes) else fname
            pos, orn = _compose(*inertial, d[5], d[6])
            kw["shapeTypes"].append(geom)
            kw["radii"].append(dims[1] if geom in (p.GEOM_CAPSULE, p.GEOM_CYLINDER) else dims[0])
            kw["halfExtents"].append([x / 2 for x in dims] if geom == p.GEOM_BOX else [0, 0, 0])
            kw["lengths"].append(dims[0] if geom in (p.GEOM_CAPSULE, p.GEOM_CYLINDER) else 0)
            kw["fileNames"].append(fname if geom == p.GEOM_MESH else "")
            kw["meshScales"].append(list(dims) if geom == p.GEOM_MESH else [1, 1, 1])
            kw[f"{frame}FramePositions"].append(pos)
            kw[f"{frame}FrameOrientations"].append(orn)
        return kw

    def _collision_shape(self, body: int, link: int) -> int:
        data = p.getCollisionShapeData(body, link, physicsClientId=self.client)
        if not data:
            return -1
        kw = self._shape_arrays(data, link, "collision")
        kw["planeNormals"] = [[0, 0, 1]] * len(data)
        return p.createCollisionShapeArray(physicsClientId=self.client, **kw)

    def _visual_shape(self, body: int, link: int) -> int:
        data = [d for d in p.getVisualShapeData(body, physicsClientId=self.client) if d[1] == link]
        if not data:
            return -1
        kw = self._shape_arrays(data, link, "visual")
        kw["rgbaColors"] = [list(d[7]) for d in data]
        try:
            return p.createVisualShapeArray(physicsClientId=self.client, **kw)
        except p.error:
            return -1

    def build(self, com_offsets: dict[int, np.ndarray], visuals: str | None = None, client: int | None = None) -> int:
        """Create the body with inertial origins moved by ``com_offsets`` (link index -> (3,) m, link frame).

        ``visuals``: visual mode of this build (default: the builder's ``visual_mode``).
        ``"model"`` needs the model's shapes, which are read while the original body exists:
        build a builder in that mode (or call :meth:`visuals` with it) before removing the body.
        ``client``: another PyBullet client to build in (builders with ``shapes=False`` only).
        """
        if client is not None and client != self.client and self.shapes:
            raise ValueError("only a shapes=False builder builds in another client")
        cid = self.client if client is None else client
        visual = [-1] * (self.n + 1) if not self.shapes else self.visuals(self.visual_mode if visuals is None else visuals)
        inertial_pos = []
        for i in range(-1, self.n):
            pos = np.asarray(self.inertial[i + 1][0], dtype=float)
            if i in com_offsets:
                pos = pos + com_offsets[i]
            inertial_pos.append(pos.tolist())
        body = p.createMultiBody(
            baseMass=self.masses[0], baseCollisionShapeIndex=self.collision[0],
            baseVisualShapeIndex=visual[0], basePosition=self.base_pos, baseOrientation=self.base_orn,
            baseInertialFramePosition=inertial_pos[0], baseInertialFrameOrientation=self.inertial[0][1],
            linkMasses=self.masses[1:], linkCollisionShapeIndices=self.collision[1:],
            linkVisualShapeIndices=visual[1:], linkPositions=self.link_pos, linkOrientations=self.link_orn,
            linkInertialFramePositions=inertial_pos[1:],
            linkInertialFrameOrientations=[x[1] for x in self.inertial[1:]],
            linkParentIndices=[q + 1 for q in self.parents], linkJointTypes=self.types, linkJointAxis=self.axes,
            flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid)
        for j in range(self.n):
            lo, hi, force, vel = self.limits[j]
            kw: dict[str, float] = {}
            if hi > lo:
                kw.update(jointLowerLimit=lo, jointUpperLimit=hi)
            if kw:
                p.changeDynamics(body, j, physicsClientId=cid, **kw)
        return body
