"""ADR boundary logic (OpenAI 2019) and boundary pinning in the env wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.train.adr import ADRState
from sim2real.train.config import ADRConfig

PROFILE = {"params": {
    "joint_damping": {"targets": "all", "distribution": "uniform", "low": 0.5, "high": 2.0, "operation": "scale"},
    "action_latency": {"distribution": "uniform", "low": 0.0, "high": 0.04, "unit": "seconds"},
    "gravity": {"distribution": "uniform", "low": [-1, -1, -2], "high": [1, 1, 0.5], "operation": "add"},
    "fixed": {"param": "observation_noise", "distribution": "constant", "value": 0.01},
}}


@pytest.fixture
def profile():
    from sim2real.profiles import load_profile

    return load_profile(PROFILE, robot="kuka_iiwa")


def _state(profile, **kw):
    cfg = ADRConfig(**{"buffer_size": 3, "delta": 0.1, "t_low": 0.3, "t_high": 0.7, **kw})
    return ADRState(profile, cfg)


def test_starts_at_nominal_degenerate_ranges(profile):
    s = _state(profile)
    assert set(s.ranges) == {"joint_damping", "action_latency", "gravity"}  # constant entry is not adapted
    np.testing.assert_array_equal(s.ranges["joint_damping"], [[1.0], [1.0]])   # scale -> 1
    np.testing.assert_array_equal(s.ranges["action_latency"], [[0.0], [0.0]])  # abs -> profile low
    np.testing.assert_array_equal(s.ranges["gravity"], np.zeros((2, 3)))       # add -> 0
    assert len(s.boundaries()) == 2 * (1 + 1 + 3)


def test_widen_only_when_buffer_full(profile):
    s = _state(profile)
    b = ("joint_damping", 0, "high")
    assert not s.record(b, 1.0)
    assert not s.record(b, 1.0)
    np.testing.assert_array_equal(s.ranges["joint_damping"], [[1.0], [1.0]])
    assert s.record(b, 1.0)  # buffer of 3 full, mean 1 >= t_high: widen by 0.1 * (2 - 0.5)
    np.testing.assert_allclose(s.ranges["joint_damping"], [[1.0], [1.15]])
    assert s.buffers[b] == []  # buffer cleared after the decision
    for _ in range(3):
        s.record(("joint_damping", 0, "low"), 0.9)
    np.testing.assert_allclose(s.ranges["joint_damping"], [[0.85], [1.15]])


def test_narrow_and_middle_band(profile):
    s = _state(profile)
    b = ("joint_damping", 0, "high")
    for _ in range(6):
        s.record(b, 1.0)
    np.testing.assert_allclose(s.ranges["joint_damping"][1], [1.3])
    for p in (0.5, 0.5, 0.5):  # t_low < mean < t_high: unchanged
        s.record(b, p)
    np.testing.assert_allclose(s.ranges["joint_damping"][1], [1.3])
    for _ in range(3):
        s.record(b, 0.0)  # mean <= t_low: narrow
    np.testing.assert_allclose(s.ranges["joint_damping"][1], [1.15])
    for _ in range(30):
        s.record(b, 0.0)  # never narrows past nominal
    np.testing.assert_allclose(s.ranges["joint_damping"][1], [1.0])


def test_clipped_to_profile_limits(profile):
    s = _state(profile)
    for _ in range(300):
        s.record(("joint_damping", 0, "high"), 1.0)
        s.record(("joint_damping", 0, "low"), 1.0)
        s.record(("gravity", 2, "low"), 1.0)
    np.testing.assert_allclose(s.ranges["joint_damping"], [[0.5], [2.0]])
    np.testing.assert_allclose(s.ranges["gravity"][:, 2], [-2.0, 0.0])
    np.testing.assert_allclose(s.ranges["gravity"][:, :2], 0.0)  # other dimensions untouched


def test_profile_and_state_roundtrip(profile, tmp_path):
    from sim2real.profiles import load_profile

    s = _state(profile)
    for _ in range(3):
        s.record(("action_latency", 0, "high"), 1.0)
    s.record(("joint_damping", 0, "low"), 0.2)
    prof = s.profile()
    lo, hi = prof.entries["action_latency"].distribution.support()
    assert lo[0] == 0.0 and hi[0] == pytest.approx(0.004)
    assert prof.entries["fixed"] == profile.entries["fixed"]
    prof.save(tmp_path / "adr.yaml")
    again = load_profile(tmp_path / "adr.yaml", robot="kuka_iiwa")
    assert again.entries["action_latency"].distribution.support()[1][0] == pytest.approx(0.004)
    s2 = _state(profile)
    s2.load_state_dict(s.state_dict())
    np.testing.assert_array_equal(s2.ranges["action_latency"], s.ranges["action_latency"])
    assert s2.buffers[("joint_damping", 0, "low")] == [0.2]


def test_bad_entry_named(profile):
    from sim2real.errors import ConfigError

    with pytest.raises(ConfigError, match="adr.entries"):
        ADRState(profile, ADRConfig(entries=("nope",)))


def test_wrapper_pins_boundary_and_reports_it():
    import sim2real.envs  # noqa: F401
    from sim2real.profiles import load_profile
    from sim2real.train.vec import PinnedParamsWrapper, create_env

    prof = load_profile(PROFILE, robot="kuka_iiwa")
    s = _state(prof)
    for _ in range(3):
        s.record(("joint_damping", 0, "high"), 1.0)
    env = PinnedParamsWrapper(create_env("sim2real/KukaReach-v0", {}, "kuka_iiwa", s.profile()))
    env.set_adr(s.ranges_dict(), p_b=1.0, seed=0)
    seen = set()
    damping: dict[str, np.ndarray] = {}
    for k in range(16):
        _, info = env.reset(seed=k)
        name, d, side = info["pinned_tag"]["adr"]
        seen.add((name, side))
        if name == "joint_damping":  # the env reports applied values (nominal * draw)
            damping[side] = np.array(list(info["randomization"]["joint_damping"].values()), dtype=float).ravel()
    assert len(seen) >= 3
    assert set(damping) == {"low", "high"}
    np.testing.assert_allclose(damping["high"] / damping["low"], 1.15)  # boundaries 1.15 and 1.0
    env.set_adr(s.ranges_dict(), p_b=0.0)
    _, info = env.reset(seed=0)
    assert info["pinned_tag"] is None
    env.close()


def test_abs_entries_start_at_robot_nominal():
    from sim2real.profiles import load_profile
    from sim2real.robots import load_robot

    robot = load_robot("kuka_iiwa")
    prof = load_profile({"params": {"floor_friction": {"param": "lateral_friction", "targets": ["floor"],
                                                       "distribution": "uniform", "low": 0.1, "high": 1.1,
                                                       "operation": "abs"}}}, robot=robot)
    s = ADRState(prof, ADRConfig(), robot=robot)
    np.testing.assert_allclose(s.ranges["floor_friction"], [[robot.nominal["lateral_friction"]]] * 2)
    np.testing.assert_allclose(ADRState(prof, ADRConfig()).ranges["floor_friction"], [[0.6], [0.6]])  # mean
