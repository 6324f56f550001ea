"""Profile validation: every error names the file, the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.errors import ConfigError, ProfileError
from sim2real.profiles import load_profile
from sim2real.robots import load_robot

U = {"distribution": "uniform", "low": 0.5, "high": 1.5}


def load_yaml_text(tmp_path: Path, text: str, robot=None):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path, lambda: load_profile(path, robot=robot)


def error_of(tmp_path: Path, data, robot=None) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ProfileError) as exc:
        load_profile(path, robot=robot)
    assert isinstance(exc.value, ConfigError)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg          # the file comes first
    return msg[len(str(path)) + 2:]


def params(**entries):
    return {"params": entries}


CASES = [
    # (id, profile data, expected "key.path: what was expected" prefix)
    ("unknown top-level key", {"parms": {}}, "parms: unknown top-level key; expected one of"),
    ("description type", {"description": 3}, "description: expected a string, got 3"),
    ("params not a mapping", {"params": [1, 2]}, "params: expected a mapping of entry name -> entry, got list"),
    ("entry not a mapping", params(link_mass=[0.5, 2]), "params.link_mass: expected a mapping (an entry), got list"),
    ("null without parent", params(link_mass=None),
     "params.link_mass: null removes an inherited entry, but this profile has no 'extends'"),
    ("unknown kind", params(link_mas=U), "params.link_mas: unknown parameter kind 'link_mas' (no 'param' key, "
                                         "so the entry name is used) (did you mean 'link_mass'?)"),
    ("unknown kind via param", params(m={**U, "param": "mass"}), "params.m.param: unknown parameter kind 'mass'"),
    ("unknown entry key", params(link_mass={**U, "opertion": "scale"}),
     "params.link_mass.opertion: unknown key for a link_mass entry (did you mean 'operation'?); expected one of"),
    ("kind-specific key on other kind", params(joint_damping={**U, "recompute_inertia": True}),
     "params.joint_damping.recompute_inertia: unknown key for a joint_damping entry"),
    ("wrong type", params(link_mass={**U, "low": "heavy"}), "params.link_mass.low: expected a number, got 'heavy'"),
    ("bool is not a number", params(link_mass={**U, "high": True}), "params.link_mass.high: expected a number, got True"),
    ("missing distribution", params(link_mass={"low": 1, "high": 2}),
     "params.link_mass.distribution: missing key; expected one of ['uniform', 'log_uniform', 'gaussian', "
     "'truncated_gaussian', 'constant']"),
    ("unknown distribution", params(link_mass={**U, "distribution": "normal"}),
     "params.link_mass.distribution: expected one of ['uniform'"),
    ("missing uniform arg", params(link_mass={"distribution": "uniform", "low": 0.5}),
     "params.link_mass.high: missing; a uniform distribution needs low and high"),
    ("missing gaussian arg", params(com_offset={"distribution": "gaussian", "mean": 0.0}),
     "params.com_offset.std: missing; a gaussian distribution needs mean and std"),
    ("missing truncated arg", params(com_offset={"distribution": "truncated_gaussian", "mean": 0, "std": 1, "low": 0}),
     "params.com_offset.high: missing; a truncated_gaussian distribution needs mean, std, low and high"),
    ("param of another distribution", params(link_mass={**U, "std": 0.1}),
     "params.link_mass.std: not a parameter of a uniform distribution (expected low and high)"),
    ("inverted bounds", params(link_mass={**U, "low": 2.0, "high": 1.0}),
     "params.link_mass.low: inverted bounds: low (2.0) must be <= high (1.0)"),
    ("inverted vector bounds", params(gravity={"distribution": "uniform", "low": [0, 0, 1], "high": [1, 1, 0]}),
     "params.gravity.low: inverted bounds"),
    ("negative std", params(com_offset={"distribution": "gaussian", "mean": 0, "std": -0.1}),
     "params.com_offset.std: expected a finite std >= 0, got -0.1"),
    ("log_uniform low <= 0", params(joint_damping={"distribution": "log_uniform", "low": 0.0, "high": 2.0}),
     "params.joint_damping.low: log_uniform needs low > 0, got 0.0"),
    ("negative mass abs", params(link_mass={**U, "low": -0.1, "operation": "abs"}),
     "params.link_mass.low: link_mass is non-negative, so with operation abs the draw must be >= 0, got low -0.1"),
    ("negative scale", params(com_offset={**U, "low": -1.0, "operation": "scale"}),
     "params.com_offset.low: a scale factor must be >= 0, got low -1.0"),
    ("gaussian unbounded on mass", params(link_mass={"distribution": "gaussian", "mean": 1.0, "std": 0.1}),
     "params.link_mass.low: missing; a scale factor must be >= 0: give the gaussian a low >= 0 (truncation)"),
    ("negative latency", params(action_latency={"distribution": "uniform", "low": -0.01, "high": 0.02}),
     "params.action_latency.low: action_latency is non-negative"),
    ("negative noise constant", params(observation_noise={"distribution": "constant", "value": -0.01}),
     "params.observation_noise.value: observation_noise is non-negative, so with operation abs the draw must be >= 0"),
    ("negative friction", params(lateral_friction={**U, "low": -0.2, "operation": "abs", "targets": ["floor"]}),
     "params.lateral_friction.low: lateral_friction is non-negative"),
    ("colour above one", params(light_color={"distribution": "uniform", "low": 0.5, "high": 1.5}),
     "params.light_color.high: light_color with operation abs must lie in [0, 1], got high 1.5"),
    ("interval without when", params(gravity={**U, "interval": {"steps": 10}}),
     "params.gravity.interval: given, but 'when' is 'reset'; an interval needs 'when: interval'"),
    ("when interval without interval", params(gravity={**U, "when": "interval"}),
     "params.gravity.interval: missing; 'when: interval' needs interval: {steps: N} or {seconds: T}"),
    ("bad when", params(gravity={**U, "when": "always"}),
     "params.gravity.when: expected one of ['startup', 'reset', 'interval'], got 'always'"),
    ("bad interval unit", params(gravity={**U, "when": "interval", "interval": {"minutes": 1}}),
     "params.gravity.interval.minutes: unknown key; expected 'steps' or 'seconds'"),
    ("bad interval steps", params(gravity={**U, "when": "interval", "interval": {"steps": 0}}),
     "params.gravity.interval.steps: expected an integer >= 1 or [low, high] integers >= 1, got 0"),
    ("inverted interval", params(gravity={**U, "when": "interval", "interval": {"seconds": [2.0, 1.0]}}),
     "params.gravity.interval.seconds: inverted bounds"),
    ("push needs interval", params(push={**U}),
     "params.push.when: a push entry needs 'when: interval' (with an 'interval' key), got 'reset'"),
    ("bad operation", params(link_mass={**U, "operation": "multiply"}),
     "params.link_mass.operation: expected one of ['abs', 'scale', 'add'], got 'multiply'"),
    ("wrong vector dimension", params(gravity={"distribution": "uniform", "low": [0, 0], "high": [1, 1]}),
     "params.gravity.low: expected a number or a list of 3 numbers, got a list of 2"),
    ("list on a scalar kind", params(link_mass={**U, "low": [0.5, 0.5, 0.5]}),
     "params.link_mass.low: expected a number, got a list of 3"),
    ("mismatched list lengths", params(link_color={"distribution": "uniform", "low": [0, 0, 0], "high": [1, 1, 1, 1]}),
     "params.link_color.distribution: parameter lists must all have the same length, got lengths [3, 4]"),
    ("targets on a global kind", params(gravity={**U, "targets": ["base"]}),
     "params.gravity.targets: gravity is a global parameter and takes no targets"),
    ("shared on a global kind", params(gravity={**U, "shared": True}),
     "params.gravity.shared: gravity is a global parameter (one value per world)"),
    ("shared type", params(link_mass={**U, "shared": "yes"}), "params.link_mass.shared: expected true or false, got 'yes'"),
    ("targets type", params(link_mass={**U, "targets": 3}),
     "params.link_mass.targets: expected 'all' or a non-empty list of link names, got 3"),
    ("target element type", params(link_mass={**U, "targets": ["base", 3]}),
     "params.link_mass.targets[1]: expected a name, got 3"),
    ("duplicate target", params(link_mass={**U, "targets": ["base", "base"]}),
     "params.link_mass.targets: target 'base' is listed twice"),
    ("bad option choice", params(action_latency={"distribution": "uniform", "low": 0, "high": 1, "unit": "ms"}),
     "params.action_latency.unit: expected one of ['physics_steps', 'control_steps', 'seconds'], got 'ms'"),
    ("bad pattern", params(texture={"distribution": "uniform", "low": 0, "high": 1, "patterns": ["solid", "stripes"]}),
     "params.texture.patterns[1]: expected one of ['solid', 'checker', 'noise', 'gradient'], got 'stripes'"),
    ("bad duration", params(push={**U, "when": "interval", "interval": {"steps": 5}, "duration": 0}),
     "params.push.duration: expected a number > 0, got 0"),
    ("bad nested bias", params(observation_noise={"distribution": "constant", "value": 0.01,
                                                  "bias": {"distribution": "uniform", "low": 1}}),
     "params.observation_noise.bias.high: missing; a uniform distribution needs low and high"),
    ("negative push torque", params(push={**U, "when": "interval", "interval": {"steps": 5},
                                          "torque": {"distribution": "uniform", "low": -1, "high": 1}}),
     "params.push.torque.low: expected a distribution bounded below by 0"),
    ("bad region", params(distractors={"distribution": "uniform", "low": 0, "high": 3,
                                       "region": {"low": [0, 0], "high": [1, 1, 1]}}),
     "params.distractors.region.low: expected [x, y, z] in metres"),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_error(tmp_path, data, expected):
    msg = error_of(tmp_path, data)
    assert msg.startswith(expected), f"\n got: {msg}\nwant: {expected}"


ROBOT_CASES = [
    ("unknown link", "kuka_iiwa", params(link_mass={**U, "targets": ["base", "lbr_iiwa_link_9"]}),
     "params.link_mass.targets[1]: unknown link 'lbr_iiwa_link_9' for robot 'kuka_iiwa' "
     "(did you mean 'lbr_iiwa_link_7'?); expected one of ['base', 'lbr_iiwa_link_1'"),
    ("floor is not a mass", "kuka_iiwa", params(link_mass={**U, "targets": ["floor"]}),
     "params.link_mass.targets[0]: unknown link 'floor' for robot 'kuka_iiwa' (link_mass cannot target the floor)"),
    ("unknown joint", "franka_panda", params(joint_damping={**U, "targets": ["lbr_iiwa_joint_1"]}),
     "params.joint_damping.targets[0]: unknown joint 'lbr_iiwa_joint_1' for robot 'franka_panda'"),
    ("unknown model param", "quadrotor", params(model_param={**U, "targets": ["thrust"]}),
     "params.model_param.targets[0]: unknown model parameter 'thrust' for robot 'quadrotor'"),
    ("non-numeric model param", "kuka_iiwa", params(model_param={**U, "targets": ["reach_workspace"]}),
     "params.model_param.targets[0]: model parameter 'reach_workspace' of robot 'kuka_iiwa' is not a number"),
    ("all matches nothing", "quadrotor", params(joint_damping=U),
     "params.joint_damping.targets: 'all' matches no joint of robot 'quadrotor'"),
]


@pytest.mark.parametrize("robot,data,expected", [c[1:] for c in ROBOT_CASES], ids=[c[0] for c in ROBOT_CASES])
def test_robot_name_validation(tmp_path, robot, data, expected):
    for r in (robot, load_robot(robot)):        # a name or a RobotDescription
        msg = error_of(tmp_path, data, robot=r)
        assert msg.startswith(expected), f"\n got: {msg}\nwant: {expected}"


def test_robot_key_validates_at_load(tmp_path):
    msg = error_of(tmp_path, {"robot": "kuka_iiwa", **params(joint_damping={**U, "targets": ["panda_joint1"]})})
    assert msg.startswith("params.joint_damping.targets[0]: unknown joint 'panda_joint1' for robot 'kuka_iiwa'")
    msg = error_of(tmp_path, {"robot": "r2d2", "params": {}})
    assert msg.startswith("robot: unknown robot 'r2d2' (known robots:")
    msg = error_of(tmp_path, {"robot": "kuka_iiwa", "params": {}}, robot="franka_panda")
    assert msg == "robot: the profile is for robot 'kuka_iiwa', but was loaded for 'franka_panda'"
    # valid names pass, including base, floor for friction and end_effector
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"robot": "kuka_iiwa", **params(
        lateral_friction={**U, "targets": ["base", "lbr_iiwa_link_3", "floor"]},
        model_param={**U, "targets": ["success_radius"]},
        push={**U, "targets": ["end_effector"], "when": "interval", "interval": {"steps": [5, 10]}})}))
    assert load_profile(ok).robot_description.name == "kuka_iiwa"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path, load = load_yaml_text(tmp_path, "params:\n  link_mass: {distribution: uniform, low: 0.5\n")
    with pytest.raises(ProfileError) as exc:
        load()
    assert str(exc.value).startswith(f"{path}: not valid YAML at line 3, column 1:")


@pytest.mark.parametrize("text,got", [("- a\n- b\n", "a list"), ("", "an empty file"), ("42\n", "42")])
def test_non_mapping_file(tmp_path, text, got):
    path, load = load_yaml_text(tmp_path, text)
    with pytest.raises(ProfileError) as exc:
        load()
    assert str(exc.value) == (f"{path}: expected a mapping with keys ['description', 'extends', 'robot', 'params'], "
                              f"got {got}")


def test_unknown_profile_name():
    with pytest.raises(ProfileError, match=r"profile 'no_such_profile' not found: not a shipped "
                                           r"profile \(shipped: .*peng2018_arm"):
        load_profile("no_such_profile")


def test_dict_source_errors_have_key_path():
    with pytest.raises(ProfileError) as exc:
        load_profile({"params": {"link_mass": {"distribution": "uniform", "low": "x", "high": 1}}})
    assert str(exc.value) == "params.link_mass.low: expected a number, got 'x'"
    assert exc.value.key_path == ("params", "link_mass", "low") and exc.value.file is None


def test_error_key_from_child_names_child_file(tmp_path):
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump(params(link_mass=U)))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": "parent.yaml", **params(link_mass={"low": 2.0})}))
    with pytest.raises(ProfileError) as exc:
        load_profile(child)
    assert str(exc.value) == f"{child}: params.link_mass.low: inverted bounds: low (2.0) must be <= high (1.5)"
