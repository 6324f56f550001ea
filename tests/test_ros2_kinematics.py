"""URDF forward kinematics (pure numpy) against PyBullet's getLinkState."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim2real.errors import RobotError
from sim2real.robots import load_robot
from sim2real.ros2.kinematics import UrdfChain, rpy_matrix

p = pytest.importorskip("pybullet")


@pytest.mark.parametrize("robot_name", ["kuka_iiwa", "franka_panda"])
def test_fk_matches_pybullet(robot_name: str) -> None:
    robot = load_robot(robot_name)
    chain = UrdfChain(robot.model_path())
    cid = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(robot.model_path(), useFixedBase=True, physicsClientId=cid)
        infos = [p.getJointInfo(body, i, physicsClientId=cid) for i in range(p.getNumJoints(body, physicsClientId=cid))]
        joint_index = {info[1].decode(): i for i, info in enumerate(infos)}
        link_index = {info[12].decode(): i for i, info in enumerate(infos)}
        rng = np.random.default_rng(3)
        for _ in range(25):
            q = {j.name: float(rng.uniform(j.lower, j.upper)) for j in robot.joints}
            for name, value in q.items():
                p.resetJointState(body, joint_index[name], value, physicsClientId=cid)
            for link in (robot.end_effector_link, *robot.links[:3]):
                state = p.getLinkState(body, link_index[link], computeForwardKinematics=True, physicsClientId=cid)
                np.testing.assert_allclose(chain.link_position(q, link), state[4], atol=1e-6)
                np.testing.assert_allclose(chain.link_position(q, link, com=True), state[0], atol=1e-6)
                rot = np.array(p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
                np.testing.assert_allclose(chain.link_transform(q, link)[:3, :3], rot, atol=1e-6)
    finally:
        p.disconnect(cid)


def test_rpy_matrix_is_fixed_axis_xyz() -> None:
    rpy = [0.3, -0.7, 1.1]
    expected = np.array(p.getMatrixFromQuaternion(p.getQuaternionFromEuler(rpy))).reshape(3, 3)
    np.testing.assert_allclose(rpy_matrix(rpy), expected, atol=1e-12)


def test_prismatic_and_errors(tmp_path: Path) -> None:
    urdf = tmp_path / "slider.urdf"
    urdf.write_text("""<robot name="s"><link name="base"/><link name="carriage"/><link name="tool"/>
      <joint name="slide" type="prismatic"><parent link="base"/><child link="carriage"/>
        <origin xyz="0 0 1" rpy="0 0 1.5707963267948966"/><axis xyz="1 0 0"/></joint>
      <joint name="mount" type="fixed"><parent link="carriage"/><child link="tool"/><origin xyz="0.1 0 0"/></joint>
    </robot>""")
    chain = UrdfChain(urdf)
    # the slide axis is x in the joint frame, rotated 90 deg about z: it moves along world y
    np.testing.assert_allclose(chain.link_position({"slide": 0.5}, "tool"), [0.0, 0.6, 1.0], atol=1e-12)
    with pytest.raises(RobotError, match="not in the URDF"):
        chain.link_position({}, "nope")
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><link name='a'/><link name='b'/></robot>")
    with pytest.raises(RobotError, match="one root link"):
        UrdfChain(bad)


@pytest.mark.parametrize("robot_name", ["kuka_iiwa", "franka_panda"])
def test_sidecar_kinematics_round_trip(robot_name: str) -> None:
    """The chain written into the sidecar gives the URDF's end-effector pose (frame and COM)."""
    import yaml

    from sim2real.ros2.policy import parse_kinematics

    robot = load_robot(robot_name)
    urdf = UrdfChain(robot.model_path())
    desc = yaml.safe_load(yaml.safe_dump(urdf.describe(robot.end_effector_link)))  # as stored in policy.yaml
    chain = UrdfChain.from_description(parse_kinematics(desc, "policy.yaml"), "policy.yaml")
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = dict(zip(robot.joint_names, rng.uniform(-2.0, 2.0, robot.n_joints)))
        for com in (False, True):
            np.testing.assert_allclose(chain.link_transform(q, robot.end_effector_link, com=com),
                                       urdf.link_transform(q, robot.end_effector_link, com=com), atol=1e-12)


def test_sidecar_kinematics_errors_name_the_key() -> None:
    from sim2real.errors import ConfigError
    from sim2real.ros2.policy import parse_kinematics

    robot = load_robot("kuka_iiwa")
    desc = UrdfChain(robot.model_path()).describe(robot.end_effector_link)
    broken = {**desc, "joints": [desc["joints"][0], *desc["joints"][2:]]}
    with pytest.raises(ConfigError, match=r"kinematics\.joints\[1\]\.parent: expected parent"):
        parse_kinematics(broken, "policy.yaml")
    bad_axis = {**desc, "joints": [{**desc["joints"][0], "axis": [0, 0]}, *desc["joints"][1:]]}
    with pytest.raises(ConfigError, match=r"kinematics\.joints\[0\]\.axis: expected three finite numbers"):
        parse_kinematics(bad_axis, "policy.yaml")
    with pytest.raises(ConfigError, match=r"kinematics\.link: the chain ends at"):
        parse_kinematics({**desc, "link": "lbr_iiwa_link_3"}, "policy.yaml")
