"""Joint-space armature (MuJoCo's definition) in torque mode, the compliant floor contact, and
the hopper against MuJoCo's."""

import numpy as np
import pybullet as p
import pytest
import yaml

from sim2real.errors import RobotError

from sim2real.envs.hopper import HopperEnv
from sim2real.robots import load_robot
from sim2real.sim.world import PhysicsWorld

# MuJoCo 4.0.0, Gymnasium 1.4 Hopper-v5 with EPOpt's nominal dynamics (torso 6 kg with its inertia
# scaled alike, floor friction 2.0, joint damping 2.5, armature 1.0), reset noise 0, a constant
# action for 10 / 20 control steps: (x, z, pitch, thigh, leg, foot) = qpos after those steps.
MUJOCO = {
    (-0.5, 0.0, 0.0): {10: (-0.0087, 1.2158, -0.2193, -0.2663, 0.0003, 0.0042),
                       20: (-0.0435, 1.1302, -0.8640, -0.9974, -0.0006, 0.1386)},
    (0.0, -0.5, 0.0): {10: (-0.0168, 1.2201, -0.1093, 0.0004, -0.2431, 0.0261),
                       20: (-0.0824, 1.1454, -0.4314, 0.0004, -0.8452, 0.2765)},
    (0.0, 0.0, -0.5): {10: (-0.0113, 1.2385, -0.0169, 0.0004, 0.0010, -0.2126),
                       20: (-0.0847, 1.2906, -0.1053, 0.0003, 0.0007, -0.5029)},
    (-0.3, -0.3, 0.3): {10: (-0.0112, 1.2140, -0.1796, -0.1479, -0.1438, 0.1720),
                        20: (-0.0319, 1.1213, -0.7361, -0.5683, -0.5951, 0.5405)},
}


def _free_hopper() -> HopperEnv:
    env = HopperEnv(reset_noise=0.0, max_episode_steps=None)
    env.healthy_angle, env.healthy_z = 1e9, -1e9  # keep stepping through falls
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action", list(MUJOCO))
def test_hopper_follows_mujoco_hopper(action):
    """The armature (1.0 on each joint) decides how fast the torso and legs answer a torque: as
    link inertia (the old model) the torso pitched 0.85 rad further than MuJoCo's after 10 steps
    of a hip torque; without armature 0.95 rad. Measured: ≤ 0.015 rad after 10 steps, ≤ 0.07 after 20."""
    env = _free_hopper()
    try:
        got = {}
        for t in range(1, 21):
            obs, _, _, _, info = env.step(np.array(action, dtype=np.float32))
            if t in (10, 20):
                got[t] = np.array([info["x_position"], obs[0], obs[1], *obs[2:5]])
        for t, (pos_tol, ang_tol) in {10: (0.02, 0.03), 20: (0.05, 0.1)}.items():
            want = np.array(MUJOCO[action][t])
            assert np.abs(got[t][:2] - want[:2]).max() < pos_tol, (t, got[t], want)
            assert np.abs(got[t][2:] - want[2:]).max() < ang_tol, (t, got[t], want)
    finally:
        env.close()


def _lifted_world(armature: float) -> PhysicsWorld:
    w = PhysicsWorld(load_robot("hopper"))
    w.set_joint("armature", np.full(3, armature))
    z_slide = [j for j in w.movable_joints if p.getJointInfo(w.robot_id, j, physicsClientId=w.client)[1] == b"ignore2"]
    p.resetJointState(w.robot_id, z_slide[0], 2.0, 0.0, physicsClientId=w.client)  # 2 m up: no contact
    w.set_joint_state([-0.3, -0.5, 0.2], [1.0, -2.0, 0.5])
    w.hold()
    for link in range(-1, w.n_model_joints):  # PyBullet's default velocity damping of bodies: off
        p.changeDynamics(w.robot_id, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=w.client)
    return w


def test_free_motion_acceleration_is_mujocos_armature():
    """In the air one physics step changes the velocities by h·(M + diag J)⁻¹(τ − bias − D q̇),
    J only on the actuated joints' diagonal (computed here from PyBullet's M and bias)."""
    w = _lifted_world(0.7)
    try:
        cid, rid, mov = w.client, w.robot_id, w.movable_joints
        st = p.getJointStates(rid, mov, physicsClientId=cid)
        q, qd = [s[0] for s in st], np.array([s[1] for s in st])
        mass = np.array(p.calculateMassMatrix(rid, q, physicsClientId=cid))
        bias = np.array(p.calculateInverseDynamics(rid, q, qd.tolist(), [0.0] * len(mov), physicsClientId=cid))
        tau = np.array([30.0, -50.0, 20.0])
        dofs = [mov.index(j) for j in w.joint_indices]
        full = np.zeros(len(mov))
        full[dofs] = tau
        damp = np.zeros(len(mov))
        damp[dofs] = 2.5
        eff = mass.copy()
        eff[dofs, dofs] += 0.7
        want = np.linalg.solve(eff, full - bias - damp * qd)
        w.substeps = 1
        w.step(tau)
        qd1 = np.array([s[1] for s in p.getJointStates(rid, mov, physicsClientId=cid)])
        got = (qd1 - qd) / w.physics_dt
        assert np.allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        # ... which is not what the same torques do without armature
        assert np.abs(np.linalg.solve(mass, full - bias - damp * qd) - want).max() > 0.1 * np.abs(want).max()
    finally:
        w.close()


def test_torque_mode_keeps_link_inertia_position_mode_uses_it():
    """Torque mode: the armature is in joint space, link inertias stay the model's; position
    mode (PyBullet motor constraints) puts J on the driven link's inertia; switching moves it."""
    w = PhysicsWorld(load_robot("hopper"))
    try:
        cid, thigh = w.client, w.link_index["thigh"]
        nominal = w.nominal["links"]["thigh"]["inertia"][1]
        assert w._armature == [1.0, 1.0, 1.0]
        assert p.getDynamicsInfo(w.robot_id, thigh, physicsClientId=cid)[2][1] == pytest.approx(nominal)
        w.mode = "position"
        w.reset_control()
        assert w._armature is None
        assert p.getDynamicsInfo(w.robot_id, thigh, physicsClientId=cid)[2][1] == pytest.approx(nominal + 1.0, rel=1e-4)
        w.mode = "torque"
        w.reset_control()
        assert w._armature == [1.0, 1.0, 1.0]
        assert p.getDynamicsInfo(w.robot_id, thigh, physicsClientId=cid)[2][1] == pytest.approx(nominal)
        w.set_joint("armature", np.zeros(3))
        assert w._armature is None  # nothing to compute: the plain torque loop runs
    finally:
        w.close()


def test_constraint_memory_is_dropped_at_resets():
    """The previous step's constraint force must not leak across a reset: the same episode
    after a reset gives the same states, whatever ran before."""
    def episode(env: HopperEnv, seed: int) -> np.ndarray:
        env.reset(seed=seed)
        rng = np.random.default_rng(5)
        return np.array([env.step(rng.uniform(-1, 1, 3).astype(np.float32))[0] for _ in range(15)])

    env = _free_hopper()
    try:
        first = episode(env, 3)
        episode(env, 4)
        env.step(np.ones(3, dtype=np.float32))  # mid-flight state, then reset
        again = episode(env, 3)
        assert np.array_equal(first, again)
        env.world.hold()
        assert env.world._armature_prev is None
    finally:
        env.close()


def test_hopper_reward_uses_the_torso_x():
    """Gym's forward reward is the torso centre's x velocity. The pybullet_data model's pitch
    hinge sits 1.25 m below the torso, so its root x slide moves by ~1.25·Δpitch when only the
    torso tilts: a hip torque that pitches the torso must not earn forward reward."""
    env = _free_hopper()
    try:
        cid, rid, torso = env.world.client, env.world.robot_id, env._torso
        for _ in range(8):
            x0 = p.getLinkState(rid, torso, physicsClientId=cid)[0][0]
            _, reward, _, _, info = env.step(np.array([-0.5, 0.0, 0.0], dtype=np.float32))
            x1 = p.getLinkState(rid, torso, physicsClientId=cid)[0][0]
            assert info["x_position"] == pytest.approx(x1, abs=1e-12)
            assert info["x_velocity"] == pytest.approx((x1 - x0) / env.world.control_dt, abs=1e-9)
            assert reward == pytest.approx(info["x_velocity"] + 1.0 - 1e-3 * 0.25, abs=1e-9)
        assert abs(env._pitch) > 0.1 and abs(info["x_position"]) < 0.05
    finally:
        env.close()


# MuJoCo's Hopper-v5 (as MUJOCO above) dropped from 0.2 m above its start pose, zero action:
# control step -> (torso z, torso vertical velocity). Its soft contact compresses ~2.5 cm and
# throws the hopper back up; PyBullet's rigid contact stops it dead at z = 1.21.
MUJOCO_DROP = {30: (1.1831, -0.1778), 33: (1.1863, 0.3256), 36: (1.1951, 0.3580), 42: (1.2063, 0.1079)}


def _drop(env: HopperEnv) -> dict[int, tuple[float, float]]:
    cid, rid, root = env.world.client, env.world.robot_id, env._all
    z0 = p.getJointState(rid, root[1], physicsClientId=cid)[0]
    p.resetJointState(rid, root[1], z0 + 0.2, 0.0, physicsClientId=cid)
    env.world.hold()
    out = {}
    for t in range(43):
        obs = env.step(np.zeros(3, dtype=np.float32))[0]
        out[t] = (float(obs[0]), float(obs[7]))
    return out


def test_floor_contact_is_compliant_like_mujocos():
    env = _free_hopper()
    try:
        floor = p.getDynamicsInfo(env.world.floor_id, -1, physicsClientId=env.world.client)
        assert floor[9] == pytest.approx(8000.0) and floor[8] == pytest.approx(300.0)  # stiffness, damping
        got = _drop(env)
        for t, (z, vz) in MUJOCO_DROP.items():
            assert abs(got[t][0] - z) < 0.006 and abs(got[t][1] - vz) < 0.1, (t, got[t], (z, vz))
        # the rigid default: no compression, no rebound
        p.changeDynamics(env.world.floor_id, -1, contactStiffness=1e12, contactDamping=1e9, physicsClientId=env.world.client)
        env.reset(seed=0)
        rigid = _drop(env)
        assert rigid[36][0] > 1.2 and abs(rigid[36][1]) < 0.05
    finally:
        env.close()


@pytest.mark.parametrize("params, match", [
    ({"floor_contact_stiffness": 8000.0}, "floor_contact_damping"),
    ({"floor_contact_stiffness": -1.0, "floor_contact_damping": 300.0}, "floor_contact_stiffness"),
    ({"floor_contact_stiffness": "soft", "floor_contact_damping": 300.0}, "floor_contact_stiffness"),
])
def test_floor_contact_params_are_validated(tmp_path, params, match):
    src = load_robot("hopper").file
    raw = yaml.safe_load(src.read_text())
    raw["model_params"] = {k: v for k, v in raw["model_params"].items() if not k.startswith("floor_contact")}
    raw["model_params"].update(params)
    raw["model"]["path"] = "mjcf/hopper.xml"
    f = tmp_path / "robot.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(RobotError, match=match):
        PhysicsWorld(load_robot(f))


def test_floor_contact_follows_a_model_param_entry():
    """A ``model_param`` entry on the floor contact is applied at each reset, and undone."""
    entry = {"param": "model_param", "targets": ["floor_contact_stiffness"], "distribution": "constant",
             "value": 0.5, "operation": "scale"}
    env = HopperEnv(profile={"params": {"soft": entry}}, max_episode_steps=None)
    try:
        cid, floor = env.world.client, env.world.floor_id
        env.reset(seed=0)
        assert p.getDynamicsInfo(floor, -1, physicsClientId=cid)[9] == pytest.approx(4000.0)
        env.set_profile("nominal")
        env.reset(seed=0)
        assert p.getDynamicsInfo(floor, -1, physicsClientId=cid)[9] == pytest.approx(8000.0)
    finally:
        env.close()


def test_armature_solve_matches_numpy_on_random_systems():
    """The compiled solve against the formula in numpy: q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g),
    g = M_prev Δq̇/h − applied_prev; sent τ − J q̈; applied −bias − D q̇ + sent."""
    from sim2real.sim._armature import armature_solve

    rng = np.random.default_rng(4)
    for n, dofs in ((7, list(range(7))), (6, [3, 4, 5]), (5, [0, 2, 4])):
        a = rng.normal(size=(n, n))
        mass, mass_prev = a @ a.T + n * np.eye(n), a @ a.T + (n + 0.5) * np.eye(n)
        bias, qd, qd_prev, applied_prev = (rng.normal(size=n) for _ in range(4))
        damping = rng.uniform(0.0, 2.0, n)
        arm, torque = rng.uniform(0.0, 1.0, len(dofs)), rng.normal(size=len(dofs))
        h = 0.002
        for prev in (None, (mass_prev.tolist(), applied_prev.tolist(), qd_prev.tolist())):
            sent, applied = armature_solve(mass.tolist(), bias.tolist(), qd.tolist(), damping.tolist(), dofs,
                                           arm.tolist(), torque.tolist(), prev, h)
            base = -bias - damping * qd
            force = base + (0.0 if prev is None else mass_prev @ ((qd - qd_prev) / h) - applied_prev)
            force[dofs] += torque
            eff = mass.copy()
            eff[dofs, dofs] += arm
            qdd = np.linalg.solve(eff, force)
            np.testing.assert_allclose(sent, torque - arm * qdd[dofs], rtol=1e-10, atol=1e-12)
            expected = base.copy()
            expected[dofs] += torque - arm * qdd[dofs]
            np.testing.assert_allclose(applied, expected, rtol=1e-10, atol=1e-12)


def test_armature_solve_checks_its_input():
    from sim2real.sim._armature import armature_solve

    eye = [[1.0, 0.0], [0.0, 1.0]]
    sent, applied = armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], None, 0.002)
    assert sent == [1.0] and applied == [0.0, 1.0]  # q̈ = 2 / (1 + 1): half the torque goes into the rotor
    with pytest.raises(ValueError, match="mass matrix"):
        armature_solve([[1.0]], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], None, 0.002)
    with pytest.raises(ValueError, match="out of range"):
        armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [2], [1.0], [2.0], None, 0.002)
    with pytest.raises(ValueError, match="prev"):
        armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], (eye,), 0.002)
