"""sim2real: sim-to-real robot learning toolkit.

Install torch's CPU build first on machines without a GPU (``pip install torch==2.13.0``
where that wheel is available locally, or ``--index-url https://download.pytorch.org/whl/cpu``),
then ``pip install -e ".[all]"``. A robot computer that only runs the deployment node
installs ``pip install ".[deploy]"`` (numpy, PyYAML, torch, Cyclone DDS; no simulator).
"""

from pathlib import Path

from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` under ``share/sim2real/<folder>`` (ROS 2 package layout)."""
    out: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(HERE)
            out.setdefault(str(Path("share/sim2real") / rel.parent), []).append(str(rel))
    return sorted(out.items())


# Core: what the deployment node and the command-line front end need (a robot computer).
core = [
    "numpy>=1.24,<3",
    "pyyaml>=6.0,<7",
]
# The simulation / training stack, kept out of the core so a robot computer installs without it.
simulation = [
    "pybullet>=3.2.5,<4",
    "gymnasium>=0.29.1,<2",
    "stable-baselines3>=2.3,<3",
    "torch>=2.1,<3",
    "opencv-python-headless>=4.8",
    "matplotlib>=3.7,<4",
    "tqdm>=4.64",
    "scipy>=1.10,<2",
    "tensorboard>=2.14,<3",
]
extras = {
    "sim": simulation,
    # robot computer: the deployment node (TorchScript policy) over rclpy or the ROS 2 wire-compatible DDS transport
    "deploy": ["torch>=2.1,<3", "cyclonedds>=0.10.5,<12"],
    "sysid": [*simulation, "rosbags>=0.10,<1", "cma>=3.3,<5"],
    "ros2": ["rosbags>=0.10,<1", "cyclonedds>=0.10.5,<12"],
    "adapt": [*simulation, "scikit-learn>=1.3,<2", "rosbags>=0.10,<1"],
    "ray": ["ray[default]>=2.9,<3"],
    "export": ["onnx>=1.15,<2", "onnxscript>=0.1"],
    "dev": ["pytest>=7.4", "pytest-timeout>=2.2", "hypothesis>=6"],
    # the MuJoCo "hardware" (sim2real sim2sim): MuJoCo, the robots' URDFs from pybullet_data, the DDS transport
    "sim2sim": ["mujoco>=3.2", "pybullet>=3.2.5,<4", "cyclonedds>=0.10.5,<12", "scipy>=1.10,<2"],
}
extras["all"] = sorted({dep for deps in extras.values() for dep in deps})

data_files = [
    ("share/ament_index/resource_index/packages", ["resource/sim2real"]),
    ("share/sim2real", ["package.xml"]),
]
for folder in ("robots", "randomization_profiles", "launch", "configs"):
    if (HERE / folder).is_dir():
        data_files += tree(folder)

# The quadrotor's per-physics-step rotor and controller kernel in C (sim2real/sim/_quadkernel.c;
# building needs a C compiler and the Python headers): the one implementation of that model.
quadkernel = Extension("sim2real.sim._quadkernel", ["sim2real/sim/_quadkernel.c"], depends=["sim2real/sim/_pyfloats.h"],
                       extra_compile_args=["-O2"])
# The joint-space armature solve, run every physics step of a robot with armature (sim2real/sim/_armature.c).
armature = Extension("sim2real.sim._armature", ["sim2real/sim/_armature.c"], depends=["sim2real/sim/_pyfloats.h"],
                     extra_compile_args=["-O2"])

setup(
    name="sim2real",
    version="0.1.0",
    description="Sim-to-real robot learning: randomized PyBullet simulation, robust training, "
    "system identification, domain adaptation and ROS 2 deployment",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sim2real", "sim2real.*"]),
    install_requires=core,
    extras_require=extras,
    data_files=data_files,
    ext_modules=[quadkernel, armature],
    entry_points={
        "console_scripts": [
            "sim2real=sim2real.cli.main:main",
            # ROS 2 executables named by launch/*.launch.py (ros2 run sim2real <name>)
            "deploy_node=sim2real.ros2.node:main",
        ],
    },
)
