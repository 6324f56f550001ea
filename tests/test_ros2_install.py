"""The package installed the way ``colcon build`` installs an ament_python package.

colcon (colcon-core's ``PythonBuildTask``) runs, from the package source::

    python setup.py egg_info --egg-base <build> build --build-base <build>/build \
        install --prefix <install> --record <build>/install.log --single-version-externally-managed

with ``<install>/lib/pythonX.Y/site-packages`` on ``PYTHONPATH``; ``source install/setup.bash``
then puts ``<install>`` on ``AMENT_PREFIX_PATH``. ``launch_ros`` finds a node's executable at
``<prefix>/lib/<package>/<executable>``, ``<prefix>`` being the first ``AMENT_PREFIX_PATH``
entry holding ``share/ament_index/resource_index/packages/<package>``. The tests run exactly
that install into a temporary prefix, resolve every launch file's executables that way, and
run the installed node from outside the source tree.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from test_ros2_support import export_mlp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sim2real"


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ws")
    build, prefix = base / "build" / PACKAGE, base / "install" / PACKAGE
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    site.mkdir(parents=True)
    build.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM2REAL_")}
    env["PYTHONPATH"] = str(site)
    cmd = [sys.executable, "setup.py", "egg_info", "--egg-base", os.path.relpath(build, ROOT),
           "build", "--build-base", str(build / "build"),
           "install", "--prefix", str(prefix), "--record", str(build / "install.log"),
           "--single-version-externally-managed"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {"prefix": prefix, "site": site, "base": base}


def ros_env(install: dict[str, Path]) -> dict[str, str]:
    """The environment ``source install/setup.bash`` gives (no source checkout, no overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM2REAL_")}
    env["PYTHONPATH"] = str(install["site"])
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(install["base"] / "missing"), str(install["prefix"])])
    return env


def package_prefix(package: str, ament_prefix_path: str) -> Path:
    """``ament_index_python.get_package_prefix``: first prefix with the package's index marker."""
    for prefix in ament_prefix_path.split(os.pathsep):
        if prefix and (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / package).is_file():
            return Path(prefix)
    raise LookupError(f"package {package!r} not found on {ament_prefix_path}")


def launch_nodes() -> list[tuple[str, str, str]]:
    """(launch file, package, executable) of every ``Node(...)`` in launch/*.launch.py."""
    found = []
    for path in sorted((ROOT / "launch").glob("*.launch.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Node":
                kw = {k.arg: k.value for k in node.keywords}
                found.append((path.name, ast.literal_eval(kw["package"]), ast.literal_eval(kw["executable"])))
    return found


def test_index_marker_package_xml_and_share(colcon_install: dict[str, Path]) -> None:
    prefix = colcon_install["prefix"]
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    share = prefix / "share" / PACKAGE
    assert (share / "package.xml").is_file()
    for folder in ("robots", "launch", "launch/params", "randomization_profiles", "configs"):
        assert (share / folder).is_dir(), folder
    assert (share / "robots" / "kuka_iiwa" / "robot.yaml").is_file()


def test_launch_executables_resolve_like_launch_ros(colcon_install: dict[str, Path]) -> None:
    nodes = launch_nodes()
    assert ("deploy_arm.launch.py", PACKAGE, "deploy_node") in nodes
    env = ros_env(colcon_install)
    for launch_file, package, exe in nodes:
        path = package_prefix(package, env["AMENT_PREFIX_PATH"]) / "lib" / package / exe
        assert path.is_file() and os.access(path, os.X_OK), f"{launch_file}: {path} is not an executable"
    # the console scripts go to lib/sim2real (setup.cfg), not bin/ where launch_ros never looks
    assert not (colcon_install["prefix"] / "bin" / "deploy_node").exists()


def test_installed_code_finds_its_data_through_the_ament_index(colcon_install: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    code = ("import sim2real, sim2real._io as io; from sim2real.robots import list_robots, load_robot;"
            "print(sim2real.__file__); print(io.data_dir('robots')); print(io.ament_share_dir());"
            "print(','.join(list_robots())); print(load_robot('quadrotor').file)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ros_env(colcon_install),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    module, robots, share, names, quad = done.stdout.split()
    prefix = str(colcon_install["prefix"])
    assert module.startswith(str(colcon_install["site"]))
    assert robots == f"{prefix}/share/{PACKAGE}/robots" and share == f"{prefix}/share/{PACKAGE}"
    assert {"kuka_iiwa", "franka_panda", "quadrotor"} <= set(names.split(","))
    assert quad.startswith(prefix)



def test_installed_record_sysid_launch_file_finds_the_robot(colcon_install: dict[str, Path], tmp_path: Path) -> None:
    """``record_sysid.launch.py`` loads robot.yaml in the launch process: from the installed share."""
    launch_file = colcon_install["prefix"] / "share" / PACKAGE / "launch" / "record_sysid.launch.py"
    code = ("import ast, sys; path = sys.argv[1]; tree = ast.parse(open(path).read());"
            "keep = [n for n in tree.body if isinstance(n, ast.Assign) or "
            "(isinstance(n, ast.FunctionDef) and n.name == 'sysid_topics')];"
            "ns = {}; exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'), ns);"
            "print(' '.join(ns['sysid_topics']('kuka_iiwa')))")
    done = subprocess.run([sys.executable, "-c", code, str(launch_file)], cwd=tmp_path, env=ros_env(colcon_install),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "/joint_states" in done.stdout.split()


def test_installed_deploy_node_runs_with_the_shipped_parameter_file(colcon_install: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """What ``ros2 launch sim2real deploy_arm.launch.py policy:=...`` executes (DDS transport: no ROS here)."""
    pytest.importorskip("cyclonedds")
    policy = export_mlp(tmp_path / "policy")
    env = ros_env(colcon_install)
    prefix = package_prefix(PACKAGE, env["AMENT_PREFIX_PATH"])
    overrides = tmp_path / "launch_params.yaml"  # launch_ros writes the dict parameters to such a file
    overrides.write_text(f"/sim2real_deploy:\n  ros__parameters:\n    robot: kuka_iiwa\n    policy: {policy}\n"
                         "    transport: dds\n    domain_id: 231\n    duration_s: 0.5\n")
    cmd = [str(prefix / "lib" / PACKAGE / "deploy_node"), "--ros-args", "-r", "__node:=sim2real_deploy",
           "--params-file", str(prefix / "share" / PACKAGE / "launch" / "params" / "deploy_arm.yaml"),
           "--params-file", str(overrides)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no robot state was received on /joint_states" in done.stderr
    assert "final phase: waiting" in done.stdout


def test_ament_share_dir_prefers_ament_index_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With ROS 2 sourced the share directory comes from ament_index_python; without it from the
    first AMENT_PREFIX_PATH entry holding the package marker."""
    import types

    from sim2real import _io

    first, second = tmp_path / "a", tmp_path / "b"
    for prefix in (first, second):
        (prefix / "share" / "sim2real").mkdir(parents=True)
    (second / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (second / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).write_text("")
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(first), str(second)]))
    monkeypatch.setitem(sys.modules, "ament_index_python", None)  # not importable
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", None)
    assert _io.ament_share_dir() == second / "share" / PACKAGE  # the prefix with the marker, not the first
    calls = []
    module = types.ModuleType("ament_index_python.packages")
    module.PackageNotFoundError = KeyError
    module.get_package_share_directory = lambda name, print_warning=True: calls.append(name) or str(first / "x")
    monkeypatch.setitem(sys.modules, "ament_index_python", types.ModuleType("ament_index_python"))
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", module)
    assert _io.ament_share_dir() == first / "x" and calls == [PACKAGE]

    def missing(name: str, print_warning: bool = True) -> str:
        raise KeyError(name)
    module.get_package_share_directory = missing
    assert _io.ament_share_dir() is None
