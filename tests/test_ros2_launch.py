"""Launch files checked without launch_ros: syntax, entry points, parameter files, arguments."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from pathlib import Path

import pytest

from sim2real.errors import ConfigError
from sim2real.ros2.params import SCHEMA, load_params_file

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
REQUIRED_ARGS = {"robot", "policy", "params_file", "controller", "rate", "use_sim_time"}


def console_scripts() -> dict[str, str]:
    """name → 'module:function' from setup.py (parsed, not executed), plus installed metadata."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts" and isinstance(value, ast.List):
                    for elt in value.elts:
                        name, target = str(ast.literal_eval(elt)).split("=", 1)
                        scripts[name.strip()] = target.strip()
    try:
        for ep in importlib.metadata.entry_points(group="console_scripts"):
            if ep.value.startswith("sim2real."):
                scripts.setdefault(ep.name, ep.value)
    except Exception:  # metadata is optional here; setup.py is the source of truth
        pass
    return scripts


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if fname == name:
                out.append(node)
    return out


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_launch_files_exist() -> None:
    assert {f.name for f in LAUNCH_FILES} >= {"deploy_arm.launch.py", "deploy_drone.launch.py",
                                              "record_sysid.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_structure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"]
    assert funcs and not funcs[0].args.args, "generate_launch_description() must exist and take no arguments"
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "LaunchDescription" in imported
    declared = {ast.literal_eval(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    assert REQUIRED_ARGS <= declared, f"missing launch arguments {REQUIRED_ARGS - declared}"
    used = {ast.literal_eval(c.args[0]) for c in _calls(tree, "LaunchConfiguration")}
    assert used <= declared, f"LaunchConfiguration of undeclared arguments {used - declared}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_executables_are_entry_points(path: Path) -> None:
    tree = ast.parse(path.read_text())
    scripts = console_scripts()
    for call in _calls(tree, "Node"):
        assert ast.literal_eval(_kw(call, "package")) == "sim2real"
        exe = ast.literal_eval(_kw(call, "executable"))
        assert exe in scripts, f"{path.name}: executable {exe!r} is not a console entry point"
        module, func = scripts[exe].split(":")
        assert callable(getattr(importlib.import_module(module), func))
    if _calls(tree, "ExecuteProcess"):  # the only process a sim2real launch file runs is `ros2 bag record`
        heads = [[e.value for e in n.elts[:3] if isinstance(e, ast.Constant)]
                 for n in ast.walk(tree) if isinstance(n, ast.List)]
        assert ["ros2", "bag", "record"] in heads


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_parameter_files_exist_and_validate(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for call in _calls(tree, "PathJoinSubstitution"):
        parts = call.args[0].elts  # [FindPackageShare("sim2real"), "launch", "params", "x.yaml"]
        share = parts[0]
        assert isinstance(share, ast.Call) and ast.literal_eval(share.args[0]) == "sim2real"
        rel = Path(*[ast.literal_eval(p) for p in parts[1:]])
        assert (ROOT / rel).is_file(), f"{path.name} refers to missing {rel}"
        node_names = [ast.literal_eval(_kw(c, "name")) for c in _calls(tree, "Node")]
        for name in node_names:
            params = load_params_file(ROOT / rel, name)
            assert set(params) == set(SCHEMA)
        # the dict parameters the launch file adds are schema parameters too
        for c in _calls(tree, "Node"):
            for d in (e for e in _kw(c, "parameters").elts if isinstance(e, ast.Dict)):
                assert {ast.literal_eval(k) for k in d.keys} <= set(SCHEMA)


def test_installed_like_ros_package() -> None:
    """setup.py installs package.xml, the ament marker and launch/ under share/sim2real."""
    text = (ROOT / "setup.py").read_text()
    assert '"launch"' in text and "resource/sim2real" in text and "package.xml" in text
    assert (ROOT / "resource" / "sim2real").is_file()
    assert "<name>sim2real</name>" in (ROOT / "package.xml").read_text()


def test_record_topics_come_from_robot_yaml() -> None:
    spec = importlib.util.spec_from_file_location("record_sysid_launch", LAUNCH / "record_sysid.launch.py")
    source = (LAUNCH / "record_sysid.launch.py").read_text()
    tree = ast.parse(source)
    # run only sysid_topics (the rest needs launch): exec its definition and the constants it uses
    keep = [n for n in tree.body if isinstance(n, ast.Assign)
            or (isinstance(n, ast.FunctionDef) and n.name == "sysid_topics")]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(LAUNCH / "record_sysid.launch.py"), "exec"), namespace)
    assert spec is not None
    topics = namespace["sysid_topics"]("kuka_iiwa")
    assert "/joint_states" in topics and "/forward_position_controller/commands" in topics
    assert "/my_ctrl/commands" in namespace["sysid_topics"]("kuka_iiwa", "my_ctrl")
    quad = namespace["sysid_topics"]("quadrotor")
    from sim2real.robots import load_robot

    topics = load_robot("quadrotor").ros2.topics
    assert topics["odometry"] in quad and topics["imu"] in quad and "/joint_states" not in quad


def test_params_schema_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("sim2real_deploy:\n  ros__parameters:\n    safety:\n      watchdog_periods: 0\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: sim2real_deploy\.ros__parameters\.safety\.watchdog_periods"):
        load_params_file(bad)
    bad.write_text("sim2real_deploy:\n  ros__parameters:\n    rate_hz: fast\n")
    with pytest.raises(ConfigError, match="rate_hz: expected number"):
        load_params_file(bad)
    bad.write_text("sim2real_deploy:\n  ros__parameters:\n    safty: {enabled: false}\n")
    with pytest.raises(ConfigError, match="safty.enabled: unknown parameter"):
        load_params_file(bad)
    bad.write_text("other_node:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="no section for node"):
        load_params_file(bad)
    good = tmp_path / "g.yaml"
    good.write_text("/**:\n  ros__parameters:\n    rate_hz: 50\n"
                    "sim2real_deploy:\n  ros__parameters:\n    trigger: state\n")
    params = load_params_file(good)
    assert params["rate_hz"] == 50.0 and params["trigger"] == "state"
