"""sim2real.profiles: distributions, sampling, entries, extends and the shipped profiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim2real.errors import ProfileError
from sim2real.profiles import (
    PARAM_KINDS, Distribution, Entry, Interval, Profile, load_profile, shipped_profiles,
)
from sim2real.robots import list_robots, load_robot, parse_robot

HOPPER_LINKS = ["link0_2", "link0_3", "link0_4", "torso", "link0_6", "thigh", "link0_8", "leg", "link0_10", "foot"]
HOPPER_JOINTS = ["thigh_joint", "leg_joint", "foot_joint"]


def hopper_robot(tmp_path: Path):
    """The hopper description: the shipped one if another engineer has written it, else an equivalent."""
    if "hopper" in list_robots():
        return load_robot("hopper")
    raw = {
        "name": "hopper", "kind": "legged",
        "model": {"path": "mjcf/hopper.xml", "format": "mjcf", "fixed_base": False},
        "control": {"mode": "torque", "rate_hz": 125, "physics_hz": 500},
        "joints": [{"name": j, "lower": -2.6, "upper": 0.1, "max_velocity": 10, "max_effort": 200}
                   for j in HOPPER_JOINTS],
        "links": HOPPER_LINKS,
    }
    return parse_robot(raw, tmp_path / "robot.yaml")


def write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def entry(**raw) -> Entry:
    raw.setdefault("distribution", "uniform")
    name = raw.pop("name", raw.get("param", "e"))
    return load_profile({"params": {name: raw}}).entries[name]


# -- distributions --------------------------------------------------------------------------
N = 200_000


def test_uniform_statistics_and_bounds():
    d = entry(param="joint_damping", low=0.5, high=2.0).distribution
    x = d.sample(np.random.default_rng(0), N)
    assert x.shape == (N, 1)
    assert x.min() >= 0.5 and x.max() < 2.0
    assert abs(x.mean() - 1.25) < 0.01
    assert abs(x.std() - 1.5 / math.sqrt(12)) < 0.01


def test_uniform_vector_per_dimension():
    d = entry(param="gravity", low=[-1, 0, 5], high=[1, 2, 5], operation="add").distribution
    assert d.dim == 3
    x = d.sample(np.random.default_rng(1), (1000, 2))
    assert x.shape == (1000, 2, 3)
    np.testing.assert_allclose(x.reshape(-1, 3).mean(axis=0), [0, 1, 5], atol=0.05)
    assert np.all(x[..., 2] == 5.0)


def test_log_uniform_statistics():
    d = entry(param="joint_damping", distribution="log_uniform", low=0.1, high=10.0).distribution
    x = d.sample(np.random.default_rng(2), N)
    assert x.min() >= 0.1 and x.max() <= 10.0
    assert abs(np.log(x).mean() - 0.0) < 0.02          # uniform in log space, centred on log(1)
    assert abs(np.mean(x < 1.0) - 0.5) < 0.01
    assert abs(x.mean() - d.mean()[0]) / d.mean()[0] < 0.02


def test_gaussian_statistics_and_unbounded_support():
    d = entry(param="com_offset", distribution="gaussian", mean=[0.1, -0.2, 0.0], std=[0.01, 0.02, 0.0]).distribution
    x = d.sample(np.random.default_rng(3), N)
    np.testing.assert_allclose(x.mean(axis=0), [0.1, -0.2, 0.0], atol=1e-3)
    np.testing.assert_allclose(x.std(axis=0), [0.01, 0.02, 0.0], atol=1e-3)
    low, high = d.support()
    assert low[0] == -np.inf and high[1] == np.inf
    assert low[2] == high[2] == 0.0                    # zero std is a point


@pytest.mark.parametrize("kind", ["truncated_gaussian", "gaussian"])
def test_truncated_gaussian_respects_bounds_and_mean(kind):
    d = entry(param="link_mass", distribution=kind, mean=6.0, std=1.5, low=3.0, high=9.0, operation="abs").distribution
    assert d.truncated
    x = d.sample(np.random.default_rng(4), N)
    assert x.min() >= 3.0 and x.max() <= 9.0
    assert abs(x.mean() - 6.0) < 0.02
    # symmetric truncation at +-2 sigma: std = 1.5 * sqrt(1 - 2*2*phi(2)/(2*Phi(2)-1))
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert abs(x.std() - 1.5 * math.sqrt(1 - 4 * phi2 / mass)) < 0.01


def test_truncated_gaussian_one_sided_and_far_tail():
    one_sided = entry(param="joint_damping", distribution="gaussian", mean=0.0, std=1.0, low=0.0,
                      operation="abs").distribution
    x = one_sided.sample(np.random.default_rng(5), N)
    assert x.min() >= 0.0
    assert abs(x.mean() - math.sqrt(2 / math.pi)) < 0.01        # half-normal mean
    assert one_sided.support()[1][0] == np.inf

    # 8 to 9 standard deviations out: rejection sampling would never finish, inverse CDF is exact
    tail = entry(param="com_offset", distribution="truncated_gaussian", mean=0.0, std=1.0, low=8.0,
                 high=9.0).distribution
    y = tail.sample(np.random.default_rng(6), 10_000)
    assert y.min() >= 8.0 and y.max() <= 9.0
    assert abs(y.mean() - tail.mean()[0]) < 0.01
    assert 8.1 < tail.mean()[0] < 8.15                          # ~ 8 + 1/8
    lower_tail = entry(param="com_offset", distribution="truncated_gaussian", mean=0.0, std=1.0,
                       low=-9.0, high=-8.0).distribution
    z = lower_tail.sample(np.random.default_rng(6), 10_000)
    np.testing.assert_allclose(z, -y, rtol=0, atol=1e-9)        # mirror image, same uniforms


def test_constant_and_support():
    d = entry(param="observation_noise", distribution="constant", value=0.01).distribution
    x = d.sample(np.random.default_rng(0), 5)
    assert np.all(x == 0.01)
    assert d.support() == (np.array([0.01]), np.array([0.01]))


# -- entries and sampling ------------------------------------------------------------------

def test_seed_reproducibility_bit_for_bit():
    robot = load_robot("kuka_iiwa")
    prof = load_profile("arm_dynamics_full", robot=robot)
    whens = ("startup", "reset", "interval")
    a = prof.sample(np.random.default_rng(123), when=whens)
    b = prof.sample(np.random.default_rng(123), when=whens)
    c = prof.sample(np.random.default_rng(124), when=whens)
    assert list(a) == list(b) == list(prof.entries)
    for name in a:
        assert a[name].targets == b[name].targets
        assert a[name].values.tobytes() == b[name].values.tobytes()
    assert any(a[n].values.tobytes() != c[n].values.tobytes() for n in a)


def test_shared_draw_is_broadcast_per_target_draws_differ():
    robot = load_robot("kuka_iiwa")
    per = entry(param="joint_damping", low=0.5, high=2.0).sample(np.random.default_rng(0), robot)
    shared = entry(param="joint_damping", low=0.5, high=2.0, shared=True).sample(np.random.default_rng(0), robot)
    assert per.values.shape == shared.values.shape == (7, 1)
    assert per.targets == shared.targets == tuple(robot.joint_names)
    assert len(np.unique(per.values)) == 7
    assert np.all(shared.values == shared.values[0])
    assert shared.values[0, 0] == per.values[0, 0]          # the shared draw is the first draw


def test_resolve_targets_all_floor_end_effector_and_global():
    robot = load_robot("franka_panda")
    tex = entry(param="texture", targets=["all", "floor"], low=0.0, high=1.0)
    assert tex.resolve_targets(robot) == ["base", *robot.links, "floor"]
    push = entry(param="push", targets=["end_effector"], low=0, high=1, when="interval", interval={"steps": 5})
    assert push.resolve_targets(robot) == ["panda_grasptarget"]
    assert entry(param="push", low=0, high=1, when="interval", interval={"steps": 5}).resolve_targets(robot) == ["base"]
    assert entry(param="gravity", low=0, high=0.1, operation="add").resolve_targets(robot) == []
    assert entry(param="lateral_friction", targets=["floor"], low=0.1, high=1).resolve_targets(None) == ["floor"]
    with pytest.raises(ProfileError, match="need a robot"):
        tex.resolve_targets(None)


def test_global_sample_shape_and_as_dict():
    s = entry(param="gravity", low=-0.1, high=0.1, operation="add").sample(np.random.default_rng(0))
    assert s.targets == () and s.values.shape == (1, 3)
    assert list(s.as_dict()) == ["value"] and len(s.as_dict()["value"]) == 3
    np.testing.assert_array_equal(s.value(), s.values[0])
    robot = load_robot("kuka_iiwa")
    j = entry(param="joint_damping", targets=["lbr_iiwa_joint_2"], low=1, high=2).sample(np.random.default_rng(0), robot)
    assert isinstance(j.as_dict()["lbr_iiwa_joint_2"], float)
    with pytest.raises(KeyError):
        j.value("nope")


def test_distractor_counts_are_whole_numbers():
    e = entry(param="distractors", low=0, high=5)
    counts = np.concatenate([e.sample(np.random.default_rng(i)).values.ravel() for i in range(300)])
    assert set(np.unique(counts)) == {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}


def test_apply_op():
    assert entry(param="joint_damping", low=1, high=2, operation="abs").apply_op(0.5, [3.0]).tolist() == [3.0]
    assert entry(param="joint_damping", low=1, high=2).apply_op(0.5, [3.0]).tolist() == [1.5]
    assert entry(param="com_offset", low=0, high=1, operation="add").apply_op([1, 2, 3], [0.5, 0.5, 0.5]).tolist() == [1.5, 2.5, 3.5]
    # a scalar scale on a diagonal inertia broadcasts
    assert entry(param="link_inertia", low=1, high=2).apply_op([1.0, 2.0, 4.0], [0.5]).tolist() == [0.5, 1.0, 2.0]
    assert entry(param="action_latency", low=0, high=1).apply_op(None, [0.02]).tolist() == [0.02]


def test_interval_draw_period():
    rng = np.random.default_rng(0)
    steps = Interval("steps", 3, 6)
    periods = {steps.draw_period(rng, 0.05) for _ in range(500)}
    assert periods == {3, 4, 5, 6}
    seconds = Interval("seconds", 0.5, 2.0)
    draws = np.array([seconds.draw_period(rng, 0.05) for _ in range(2000)])
    assert draws.min() >= 10 and draws.max() <= 40 and 23 < draws.mean() < 27
    assert Interval("seconds", 0.001, 0.001).draw_period(rng, 0.05) == 1        # never zero steps
    assert Interval("steps", 7, 7).draw_period(rng, 0.05) == 7
    e = entry(param="push", low=0, high=1, when="interval", interval={"seconds": [0.5, 2.0]})
    assert e.interval == seconds


def test_with_bounds_for_adr():
    e = entry(param="link_mass", distribution="gaussian", mean=1.0, std=0.1, low=0.5, high=1.5)
    u = e.with_bounds(0.9, 1.1)
    assert u.distribution.kind == "uniform" and u.name == e.name and u.options == e.options
    assert u.distribution.support()[0].tolist() == [0.9] and u.distribution.support()[1].tolist() == [1.1]
    point = entry(param="joint_damping", targets=["j"], low=0.5, high=2).with_bounds(1.0, 1.0)
    assert point.sample(np.random.default_rng(0)).values.tolist() == [[1.0]]
    g = entry(param="gravity", low=-0.1, high=0.1, operation="add").with_bounds([0, 0, -1], [0, 0, 1])
    assert g.dim == 3
    with pytest.raises(ProfileError, match="inverted bounds"):
        e.with_bounds(1.2, 1.1)
    with pytest.raises(ProfileError, match="valid range"):
        e.with_bounds(-0.1, 1.1)
    assert e.value_range() == (0.0, 100.0)  # a scale factor is bounded (MAX_SCALE)
    with pytest.raises(ProfileError, match="valid range"):
        e.with_bounds(0.5, 1e308)
    assert entry(param="gravity", low=-1, high=1, operation="add").value_range() == (-100.0, 100.0)


def test_make_sample_pins_values():
    robot = load_robot("kuka_iiwa")
    e = entry(param="joint_damping", targets=["lbr_iiwa_joint_1", "lbr_iiwa_joint_2"], low=1, high=2)
    s = e.make_sample(1.5, robot)
    assert s.values.tolist() == [[1.5], [1.5]]
    s = e.make_sample({"lbr_iiwa_joint_1": 1.1, "lbr_iiwa_joint_2": 1.2}, robot)
    assert s.values.tolist() == [[1.1], [1.2]]
    with pytest.raises(ProfileError, match="misses targets"):
        e.make_sample({"lbr_iiwa_joint_1": 1.1}, robot)


# -- profiles ------------------------------------------------------------------------------

def test_due_sample_when_and_replace_entry():
    prof = load_profile("quadrotor")
    assert [e.name for e in prof.due("interval")] == ["wind_gust"]
    assert "wind_gust" not in prof.sample(np.random.default_rng(0))
    assert list(prof.sample(np.random.default_rng(0), when="interval")) == ["wind_gust"]
    new = prof.replace_entry("motor_lag", prof.entries["motor_lag"].with_bounds(1.0, 1.0))
    assert new.entries["motor_lag"].distribution.kind == "uniform"
    assert prof.entries["motor_lag"].distribution.kind == "log_uniform"     # original untouched
    assert "motor_lag" not in prof.replace_entry("motor_lag", None).entries
    with pytest.raises(ProfileError, match="unknown model parameter"):
        prof.replace_entry("x", entry(param="model_param", targets=["nope"], low=1, high=2))


def test_to_dict_roundtrip_and_atomic_save(tmp_path):
    for name in shipped_profiles():
        prof = load_profile(name, robot=None) if name not in ("epopt_hopper",) else None
        if prof is None:
            continue
        again = load_profile(prof.to_dict())
        assert again.entries == prof.entries, name
        assert again.description == prof.description
    prof = load_profile("tobin2017_visual")
    out = tmp_path / "saved.yaml"
    prof.save(out)
    assert "extends" not in yaml.safe_load(out.read_text())
    assert load_profile(out).entries == prof.entries
    assert [p.name for p in tmp_path.iterdir()] == ["saved.yaml"]          # no temp file left behind


def test_load_profile_accepts_profile_and_rechecks_robot():
    prof = load_profile({"params": {"d": {"param": "joint_damping", "targets": ["lbr_iiwa_joint_1"],
                                          "distribution": "uniform", "low": 1, "high": 2}}})
    assert load_profile(prof) is prof
    assert load_profile(prof, robot="kuka_iiwa").robot_description.name == "kuka_iiwa"
    with pytest.raises(ProfileError, match="unknown joint 'lbr_iiwa_joint_1' for robot 'franka_panda'"):
        load_profile(prof, robot="franka_panda")


# -- extends ---------------------------------------------------------------------------------

def test_extends_merges_entry_by_entry_key_by_key(tmp_path):
    write(tmp_path, "base.yaml", {
        "description": "base", "robot": "kuka_iiwa",
        "params": {
            "link_mass": {"distribution": "uniform", "low": 0.5, "high": 1.5, "recompute_inertia": False},
            "joint_damping": {"distribution": "uniform", "low": 0.5, "high": 2.0},
            "gravity": {"distribution": "uniform", "low": -0.1, "high": 0.1},
        }})
    child = write(tmp_path, "sub/child.yaml", {
        "extends": "../base.yaml",
        "params": {
            "link_mass": {"high": 3.0},                               # one key overridden
            "joint_damping": None,                                    # entry removed
            "gravity": {"distribution": "constant", "value": 0.0},    # new distribution drops low/high
            "action_latency": {"distribution": "uniform", "low": 0, "high": 2},
        }})
    prof = load_profile(child)
    assert prof.description == "base" and prof.robot == "kuka_iiwa"
    assert prof.robot_description is not None and prof.robot_description.name == "kuka_iiwa"
    assert list(prof.entries) == ["link_mass", "gravity", "action_latency"]
    lm = prof.entries["link_mass"]
    assert lm.distribution.support()[0].tolist() == [0.5] and lm.distribution.support()[1].tolist() == [3.0]
    assert lm.options["recompute_inertia"] is False                   # inherited kind-specific key
    assert prof.entries["gravity"].distribution.kind == "constant"


def test_extends_null_removes_a_key_and_shipped_parent(tmp_path):
    child = write(tmp_path, "c.yaml", {
        "extends": "peng2018_arm",
        "description": "peng without mass inertia recompute and a narrower gain",
        "params": {"link_mass": {"recompute_inertia": None}, "position_gain": {"low": 0.8, "high": 1.2}}})
    prof = load_profile(child, robot="franka_panda")
    peng = load_profile("peng2018_arm")
    assert list(prof.entries) == list(peng.entries)
    assert prof.entries["link_mass"].options["recompute_inertia"] is True   # back to the default
    assert prof.entries["position_gain"].distribution.params["low"].tolist() == [0.8]
    assert prof.entries["joint_damping"] == peng.entries["joint_damping"]


def test_extends_chain_and_cycles(tmp_path):
    write(tmp_path, "a.yaml", {"extends": "b.yaml", "params": {}})
    write(tmp_path, "b.yaml", {"extends": "c.yaml", "params": {}})
    write(tmp_path, "c.yaml", {"extends": "a.yaml", "params": {}})
    with pytest.raises(ProfileError) as exc:
        load_profile(tmp_path / "a.yaml")
    assert "extends cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml" in str(exc.value)
    assert "c.yaml: extends:" in str(exc.value)
    write(tmp_path, "self.yaml", {"extends": "self.yaml"})
    with pytest.raises(ProfileError, match="extends cycle: self.yaml -> self.yaml"):
        load_profile(tmp_path / "self.yaml")
    # a chain without a cycle: grandparent entries arrive
    write(tmp_path, "g.yaml", {"params": {"gravity": {"distribution": "uniform", "low": 0, "high": 1}}})
    write(tmp_path, "p.yaml", {"extends": "g.yaml"})
    assert list(load_profile(write(tmp_path, "k.yaml", {"extends": "p.yaml"})).entries) == ["gravity"]
    # a bare name is a shipped profile, never a file next to the referrer
    with pytest.raises(ProfileError, match="'p' not found: not a shipped profile.*give it as ./p.yaml"):
        load_profile(write(tmp_path, "k2.yaml", {"extends": "p"}))


def test_extends_missing_parent_and_error_in_parent_names_parent_file(tmp_path):
    child = write(tmp_path, "child.yaml", {"extends": "does_not_exist.yaml"})
    with pytest.raises(ProfileError) as exc:
        load_profile(child)
    msg = str(exc.value)
    assert msg.startswith(f"{child}: extends: profile 'does_not_exist.yaml' not found") and "nominal" in msg
    parent = write(tmp_path, "parent.yaml", {"params": {"joint_damping": {"distribution": "uniform",
                                                                            "low": "heavy", "high": 2}}})
    child = write(tmp_path, "child2.yaml", {"extends": "parent.yaml", "params": {"joint_damping": {"high": 3}}})
    with pytest.raises(ProfileError) as exc:
        load_profile(child)
    assert str(exc.value) == f"{parent}: params.joint_damping.low: expected a number, got 'heavy'"


# -- shipped profiles -------------------------------------------------------------------------

ARM_PROFILES = ["nominal", "peng2018_arm", "arm_dynamics_full", "cad2rl_visual", "tobin2017_visual"]


def test_every_shipped_profile_is_covered():
    assert set(shipped_profiles()) == set(ARM_PROFILES) | {"epopt_hopper", "quadrotor"}


@pytest.mark.parametrize("name", ARM_PROFILES)
@pytest.mark.parametrize("robot", ["kuka_iiwa", "franka_panda"])
def test_arm_profiles_validate_and_sample(name, robot):
    prof = load_profile(name, robot=robot)
    draws = prof.sample(np.random.default_rng(0), when=("startup", "reset", "interval"))
    assert set(draws) == set(prof.entries)
    for s in draws.values():
        assert s.values.shape == (max(1, len(s.targets)), s.entry.dim)
        assert np.all(np.isfinite(s.values))


def test_peng2018_numbers():
    p = load_profile("peng2018_arm", robot="kuka_iiwa").entries
    assert p["link_mass"].distribution.support() == (np.array([0.25]), np.array([4.0]))
    assert p["joint_damping"].distribution.support() == (np.array([0.2]), np.array([20.0]))
    assert (p["floor_friction"].param, p["floor_friction"].targets, p["floor_friction"].operation) == \
        ("lateral_friction", ("floor",), "abs")
    assert p["position_gain"].distribution.support() == (np.array([0.5]), np.array([2.0]))
    assert p["action_latency"].options["unit"] == "seconds"
    assert p["action_latency"].distribution.support()[1].tolist() == [0.04]
    assert p["observation_noise"].distribution.params["value"].tolist() == [0.01]


def test_epopt_hopper_validates_against_the_hopper(tmp_path):
    robot = hopper_robot(tmp_path)
    prof = load_profile("epopt_hopper", robot=robot)
    s = prof.sample(np.random.default_rng(0))
    assert s["torso_mass"].targets == ("torso",)
    assert s["ground_friction"].targets == ("floor",)
    assert s["joint_damping"].targets == tuple(HOPPER_JOINTS) and s["armature"].targets == tuple(HOPPER_JOINTS)
    big = prof.entries["torso_mass"].distribution.sample(np.random.default_rng(0), 50_000)
    assert big.min() >= 3.0 and big.max() <= 9.0 and abs(big.mean() - 6.0) < 0.03
    with pytest.raises(ProfileError, match="for robot 'hopper', but was loaded for 'kuka_iiwa'"):
        load_profile("epopt_hopper", robot="kuka_iiwa")


def test_quadrotor_profile():
    prof = load_profile("quadrotor")
    assert prof.robot_description is not None and prof.robot_description.name == "quadrotor"
    params = {e.targets[0] for e in prof.entries.values() if e.param == "model_param"}
    assert {"arm_length", "kf", "km", "motor_tau"} <= params
    wind = prof.entries["wind_gust"]
    assert (wind.param, wind.targets, wind.when) == ("push", ("base",), "interval")
    assert wind.interval == Interval("seconds", 0.5, 2.0)
    assert wind.options["direction"] == "horizontal" and wind.options["duration"] == 0.2
    assert wind.distribution.support() == (np.array([0.0]), np.array([0.1]))
    assert prof.entries["action_latency"].distribution.support()[1].tolist() == [0.03]


def test_visual_profiles():
    cad = load_profile("cad2rl_visual", robot="kuka_iiwa")
    assert cad.entries["textures"].options["patterns"] == ["solid", "checker", "noise", "gradient"]
    assert "floor" in cad.entries["textures"].resolve_targets(cad.robot_description)
    tobin = load_profile("tobin2017_visual")
    assert "link_colors" not in tobin.entries and "link_colors" in cad.entries
    assert tobin.entries["distractors"].distribution.support()[1].tolist() == [10.0]
    assert tobin.entries["textures"] == cad.entries["textures"]


def test_profile_dataclass_fields():
    prof = load_profile("nominal")
    assert isinstance(prof, Profile) and prof.entries == {} and prof.source.name == "nominal.yaml"
    assert prof.sample(np.random.default_rng(0)) == {}
    assert isinstance(load_profile("peng2018_arm").entries["link_mass"].distribution, Distribution)


def test_profiles_pickle_for_subprocess_envs():
    import pickle

    prof = load_profile("arm_dynamics_full", robot="kuka_iiwa")
    back = pickle.loads(pickle.dumps(prof))
    assert back.entries == prof.entries and back.robot_description == prof.robot_description
    a, b = prof.sample(np.random.default_rng(9)), back.sample(np.random.default_rng(9))
    assert all(a[k].values.tobytes() == b[k].values.tobytes() for k in a)


def test_truncated_normal_draws_are_scipys_quantiles_of_the_uniforms():
    """Each truncated-normal value is SciPy's truncnorm quantile of the generator's next uniform ``u``
    (of ``1 − u`` above the mean, where the draw works on the mirrored lower tail; tails and a zero
    std included)."""
    from scipy.stats import truncnorm

    d = Distribution("truncated_gaussian", {"mean": [0.0, 6.0, 0.0, 1.0, 0.0], "std": [0.05, 1.5, 0.0, 1.0, 1.0],
                                            "low": [-0.1, 3.0, -1.0, 8.0, -12.0], "high": [0.1, 9.0, 1.0, 9.0, -9.0]}, 5)
    lo, hi = d.support()
    m, s = d.params["mean"], d.params["std"]
    for shape in [(), (7,), (40,)]:
        got = d.sample(np.random.default_rng(3), shape)
        u = np.random.default_rng(3).random((*shape, 5))
        safe = np.where(s > 0, s, 1.0)
        a, b = (lo - m) / safe, (hi - m) / safe
        ref = truncnorm.ppf(np.where(a > 0, 1.0 - u, u), a, b, loc=m, scale=safe)
        ref = np.where(s > 0, ref, np.clip(m, lo, hi))
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
        assert np.all(got >= lo) and np.all(got <= hi)


# -- fast sampling paths (same draws as the reference formulas, bit for bit) --------------------
@pytest.mark.parametrize("kind", ["uniform", "log_uniform", "gaussian"])
@pytest.mark.parametrize("dim", [1, 3])
def test_fast_draws_equal_numpy_broadcasting_draws(kind, dim):
    g = np.random.default_rng(dim)
    a = g.uniform(0.1, 1.0, dim)
    b = a + g.uniform(0.0, 2.0, dim)
    params = {"mean": a, "std": b} if kind == "gaussian" else {"low": a, "high": b}
    d = Distribution(kind, params, dim)
    for shape in [(), (1,), (7,)]:
        rng = np.random.default_rng(9)
        if kind == "gaussian":
            ref = rng.normal(a, b, size=(*shape, dim))
        elif kind == "uniform":
            ref = rng.uniform(a, b, size=(*shape, dim))
        else:
            ref = np.exp(rng.uniform(np.log(a), np.log(b), size=(*shape, dim)))
        assert np.array_equal(d.sample(np.random.default_rng(9), shape), ref)


def test_resolved_targets_are_cached_per_robot_and_not_pickled(tmp_path):
    import pickle

    kuka, panda = load_robot("kuka_iiwa"), load_robot("franka_panda")
    e = entry(param="link_mass", low=0.5, high=2.0)
    assert e.sample(np.random.default_rng(0), kuka).targets == tuple(kuka.all_link_names())
    assert e.sample(np.random.default_rng(0), panda).targets == tuple(panda.all_link_names())
    assert e.sample(np.random.default_rng(0), kuka).targets == tuple(kuka.all_link_names())
    clone = pickle.loads(pickle.dumps(e))
    assert clone == e and "_targets_cache" not in vars(clone)
