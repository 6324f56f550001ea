"""Property-based: whatever a user types into the cheap commands, ``sim2real`` exits 0 or 2, never
with a traceback, and never changes or creates a file.

Hypothesis generates randomization profiles (kinds, keys and values, with junk mixed in, and raw
text that is not YAML), run configs (keys and SB3 hyperparameters with junk values) and argument
vectors for ``profile validate/show/sample``, ``envs run`` (1-2 steps), ``train --dry-run`` and
``calibrate``'s argument checks. Commands run in this process through
:func:`sim2real.cli.main.main`; an exception escaping it fails the example, as does any exit code
other than 0/2, a traceback on stderr, or a change to the scratch folder's files. Examples are
derandomized (the same ones every run) and nothing is stored in a Hypothesis database.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sim2real.cli.main import main
from sim2real.profiles import OPERATIONS, PARAM_KINDS, WHENS
from sim2real.profiles.distributions import DISTRIBUTIONS

ROBOTS = ["kuka_iiwa", "franka_panda", "quadrotor", "hopper"]
LINKS = ["lbr_iiwa_link_1", "lbr_iiwa_link_7", "base", "floor", "panda_link3"]
JOINTS = ["lbr_iiwa_joint_1", "lbr_iiwa_joint_4", "panda_joint2"]
ENVS = ["sim2real/KukaReach-v0", "sim2real/PandaReach-v0", "sim2real/Hopper-v0", "sim2real/QuadrotorHover-v0"]

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**3, 10**3), st.integers(-10**30, 10**30),
                   st.floats(allow_nan=True, allow_infinity=True), st.floats(-5, 5), st.text(max_size=6))
junk = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=8)
number = st.one_of(st.floats(-2, 2), st.floats(0.01, 3), st.lists(st.floats(-1, 1), min_size=1, max_size=4), junk)


def _maybe(options: list, extra=junk):
    return st.one_of(st.sampled_from(options), extra)


entry = st.fixed_dictionaries({}, optional={
    "param": _maybe(list(PARAM_KINDS)), "distribution": _maybe(list(DISTRIBUTIONS)),
    "low": number, "high": number, "mean": number, "std": number, "value": number,
    "operation": _maybe(list(OPERATIONS)), "when": _maybe(list(WHENS)), "interval": junk,
    "targets": st.one_of(st.just("all"), st.lists(st.sampled_from(LINKS + JOINTS), max_size=3), junk),
    "recompute_inertia": junk, "junk_key": junk})
profile = st.fixed_dictionaries({}, optional={
    "description": st.one_of(st.text(max_size=10), junk),
    "extends": st.one_of(st.sampled_from(["nominal", "peng2018_arm", "nope", "./p.yaml", "adir", "afile.txt"]), junk),
    "robot": _maybe(ROBOTS + ["nobot"]),
    "params": st.one_of(st.dictionaries(st.one_of(st.sampled_from(list(PARAM_KINDS)), st.text(max_size=6)),
                                        st.one_of(entry, junk), max_size=3), junk),
    "parms": junk})
# nearly valid: one well-formed entry of a real kind with one key replaced by a generated value
good_entry = st.sampled_from(list(PARAM_KINDS)).map(lambda k: (k, {"distribution": "uniform", "low": 0.9, "high": 1.1,
                                                                   "operation": PARAM_KINDS[k].default_op}))
near_profile = st.tuples(good_entry, st.sampled_from(["distribution", "low", "high", "operation", "targets", "when",
                                                      "interval", "value", "mean", "std"]), number).map(
    lambda t: {"robot": "kuka_iiwa", "params": {t[0][0]: {**t[0][1], t[1]: t[2]}}})
raw_text = st.one_of(st.text(max_size=60), st.sampled_from(["params: [unclosed", "a: *x", "params: {a: 1, a: 2}",
                                                            "- 1\n- 2", "\x00\x01", "params: !!python/object:os.system {}"]))

BASE_CFG = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 8}}, "robot": "kuka_iiwa",
            "algo": "ppo", "net_arch": [8], "hyperparameters": {"n_steps": 16, "batch_size": 16, "n_epochs": 1},
            "total_timesteps": 16, "eval": {"freq": 0, "episodes": 1}}
HP_KEYS = ["learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef",
           "vf_coef", "max_grad_norm", "buffer_size", "tau", "train_freq", "gradient_steps", "learning_starts",
           "target_kl", "normalize_advantage", "use_sde", "policy_kwargs", "seed", "bogus"]
run_config = st.fixed_dictionaries({}, optional={
    "env": st.one_of(st.sampled_from(ENVS), st.fixed_dictionaries({"id": _maybe(ENVS)}, optional={"kwargs": st.one_of(
        st.fixed_dictionaries({}, optional={"max_episode_steps": st.one_of(st.integers(-2, 20), junk),
                                            "action_mode": junk, "bogus": junk}), junk)}), junk),
    "robot": _maybe(ROBOTS + ["nobot"]), "profile": st.one_of(st.sampled_from(["nominal", "peng2018_arm", "p.yaml",
                                                                                 "nope"]), profile, junk),
    "algo": _maybe(["ppo", "sac", "epopt_ppo"]), "policy": _maybe(["MlpPolicy", "CnnPolicy"]),
    "net_arch": st.one_of(st.lists(st.integers(-1, 16), max_size=3), junk), "activation": _maybe(["tanh", "relu"]),
    "hyperparameters": st.one_of(st.dictionaries(st.sampled_from(HP_KEYS), st.one_of(number, st.integers(-3, 64), junk),
                                                 max_size=4), junk),
    "n_envs": st.one_of(st.integers(-1, 3), junk), "total_timesteps": st.one_of(st.integers(-5, 10**13), junk),
    "seed": st.one_of(st.integers(-5, 2**33), junk), "normalize": junk, "eval": junk, "checkpoint": junk,
    "epopt": junk, "adr": junk, "init_from": junk, "vec_env": _maybe(["auto", "dummy"]), "junk_key": junk})
near_config = st.tuples(st.sampled_from(sorted(BASE_CFG) + ["profile", "normalize", "seed", "n_envs", "adr", "epopt"]),
                        junk).map(lambda kv: {kv[0]: kv[1]})
near_hyperparameters = st.tuples(st.sampled_from(HP_KEYS), st.one_of(number, st.integers(-3, 64), junk)).map(
    lambda kv: {"hyperparameters": {**BASE_CFG["hyperparameters"], kv[0]: kv[1]}})
arg = st.one_of(st.sampled_from(["0", "1", "2", "-1", "1.5", "nan", "inf", "1e30", "x", "", "0,1", "4294967296"]),
                st.text(max_size=6))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of files that must survive every command: a valid profile and run config, a plain file,
    a folder, a file named like a shipped profile."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "p.yaml").write_text("params:\n  gravity: {distribution: uniform, low: [0, 0, -10], high: [0, 0, -9]}\n")
    (d / "cfg.yaml").write_text(yaml.safe_dump(BASE_CFG))
    (d / "afile.txt").write_text("not a profile\n")
    (d / "adir").mkdir()
    (d / "adir" / "keep.txt").write_text("keep\n")
    (d / "nominal.yaml").write_text("params: {junk: {}}\n")
    return d


def _snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(d.rglob("*"))}


def _sim2real(scratch: Path, argv: list[str]) -> tuple[int, str]:
    before = _snapshot(scratch)
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse usage errors
                code = exc.code
    finally:
        os.chdir(cwd)
    stderr = err.getvalue()
    event(f"{argv[0]} exit {code}")  # shown by pytest --hypothesis-show-statistics
    assert code in (0, 2), (argv, code, stderr)
    assert "Traceback" not in stderr, (argv, stderr)
    if code == 2:
        lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
        assert len(lines) == 1 and ": error: " in lines[0], (argv, stderr)
    assert _snapshot(scratch) == before, f"{argv} changed the scratch folder"
    return code, stderr


def _write(scratch: Path, name: str, data) -> str:
    path = scratch / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True))
    return name


def _cleanup(scratch: Path, *names: str) -> None:
    for name in names:
        (scratch / name).unlink(missing_ok=True)


@given(data=st.one_of(profile, near_profile, raw_text), robot=st.one_of(st.none(), st.sampled_from(ROBOTS + ["nobot"])),
       command=st.sampled_from(["validate", "show", "sample"]), seed=arg,
       when=st.one_of(st.none(), st.sampled_from(["startup", "reset,interval", "bogus", ""])), as_json=st.booleans())
@settings(FUZZ, max_examples=200)
@example(data={"params": {"link_mass": {"distribution": [0.0], "low": 0.9, "high": 1.1}}}, robot=None,
         command="validate", seed="0", when=None, as_json=False)  # a list where a name is expected
@example(data={"params": {"\r": None}}, robot=None, command="validate", seed="0", when=None,
         as_json=False)  # a line break in a key name
def test_profile_commands(scratch: Path, data, robot, command: str, seed: str, when, as_json: bool) -> None:
    name = _write(scratch, "gen.yaml", data)
    argv = ["profile", command, name] + (["--robot", robot] if robot else [])
    if command == "sample":
        argv += ["--seed", seed] + (["--when", when] if when is not None else []) + (["--json"] if as_json else [])
    try:
        _sim2real(scratch, argv)
        # a bare name is a shipped profile, never the local nominal.yaml (which is not valid)
        _sim2real(scratch, ["profile", command, "nominal"])
    finally:
        _cleanup(scratch, name)


@given(data=st.one_of(near_profile, profile, st.just({"params": {}})), env=st.sampled_from(ENVS), steps=st.sampled_from(["1", "2", "0", "-1", "x"]),
       seed=arg)
@settings(FUZZ, max_examples=20)
def test_envs_run(scratch: Path, data, env: str, steps: str, seed: str) -> None:
    name = _write(scratch, "gen.yaml", data)
    try:
        _sim2real(scratch, ["envs", "run", env, "--profile", name, "--steps", steps, "--seed", seed])
    finally:
        _cleanup(scratch, name)


@given(cfg=st.one_of(near_config, near_hyperparameters, run_config), flags=st.lists(st.sampled_from(["--seed", "--seeds", "--total-timesteps", "--workers", "--ray",
                                                       "--resume"]), max_size=2, unique=True), values=st.lists(arg, min_size=2, max_size=2),
       out=st.sampled_from(["newrun", "afile.txt", "adir", "afile.txt/run", "adir/run"]))
@settings(FUZZ, max_examples=60)
def test_train_dry_run(scratch: Path, cfg: dict, flags: list, values: list, out: str) -> None:
    name = _write(scratch, "gencfg.yaml", {**BASE_CFG, **cfg})
    argv = ["train", name, "--dry-run", "--no-progress", "--out", out]
    for flag, value in zip(flags, values):
        argv += [flag] if flag == "--resume" else [flag, value]
    try:
        _sim2real(scratch, argv)
    finally:
        _cleanup(scratch, name)


@given(robot=_maybe(ROBOTS + ["nobot"], st.text(max_size=5)), params=st.one_of(
    st.sampled_from(["damping", "damping,friction", "armature", "bogus", "", "damping:lbr_iiwa_joint_1", "mass"]),
    st.text(max_size=12)), bounds=st.one_of(st.sampled_from(["", "damping=0.1:2", "damping=2:0.1", "damping=nan:1",
                                                             "x=1", "damping=-1:1e400"]), st.text(max_size=12)),
       profile=st.sampled_from([None, "nominal", "p.yaml", "nope", "afile.txt"]),
       numbers=st.lists(st.tuples(st.sampled_from(["--budget", "--horizon", "--max-windows", "--w-vel", "--w-tau",
                                                   "--seed", "--workers"]), arg), max_size=2),
       log=st.sampled_from(["missing_log", "adir", "afile.txt"]), out=st.sampled_from(["cal.yaml", "afile.txt",
                                                                                       "adir", "afile.txt/c.yaml"]))
@settings(FUZZ, max_examples=60)
def test_calibrate_argument_checks(scratch: Path, robot, params: str, bounds: str, profile, numbers: list, log: str,
                                   out: str) -> None:
    argv = ["calibrate", "--log", log, "--robot", str(robot), "--params", params, "--bounds", bounds, "--out", out]
    argv += ["--profile", profile] if profile else []
    for flag, value in numbers:
        argv += [flag, value]
    code, _ = _sim2real(scratch, argv)
    assert code == 2  # no log to calibrate from: always an error, one line
