"""Bad input to every ``sim2real`` sub-command: one error line, exit code 2, nothing clobbered.

Each case runs the real CLI (``python -m sim2real ...``) in a subprocess on a scratch folder
holding malformed files (broken YAML, a binary file, a directory, a corrupt zip, a truncated
rosbag2). All cases run concurrently once per module (they are I/O- and import-bound); each
parametrized test then checks one case: exit code 2, exactly one line on stderr of the form
``sim2real <cmd>...: error: ...`` naming the offending file/key, no traceback, and that output
files that existed before the command are byte-identical afterwards. No training is run.
"""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "train" / "quickstart.yaml"
PANDA = ROOT / "configs" / "train" / "panda_reach.yaml"
CAL = "calibrate --log bag --robot kuka_iiwa --params damping"

# name -> (argv after `sim2real`, text the error line must contain, pre-existing outputs to keep)
CASES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "envs_unknown_id": ("envs run sim2real/Nope-v0 --steps 5", "sim2real/Nope-v0", ()),
    "envs_malformed_profile": ("envs run sim2real/KukaReach-v0 --profile bad.yaml --steps 5", "bad.yaml", ()),
    "profile_validate_missing": ("profile validate missing.yaml", "missing.yaml", ()),
    "profile_validate_dir": ("profile validate adir", "adir", ()),
    "profile_validate_binary": ("profile validate notyaml.png", "notyaml.png", ()),
    "profile_show_binary": ("profile show notyaml.png", "notyaml.png", ()),
    "profile_sample_malformed": ("profile sample bad.yaml", "bad.yaml", ()),
    "train_missing_config": ("train missing.yaml --out tr_out", "missing.yaml", ("tr_out/keep.txt",)),
    "train_config_is_dir": ("train adir --out tr_out", "adir", ("tr_out/keep.txt",)),
    "train_config_binary": ("train notyaml.png --out tr_out", "notyaml.png", ("tr_out/keep.txt",)),
    "train_config_malformed": ("train cfg_malformed.yaml --out tr_out", "cfg_malformed.yaml", ("tr_out/keep.txt",)),
    "train_unknown_env": ("train cfg_badenv.yaml --out tr_out", "sim2real/Nope-v0", ("tr_out/keep.txt",)),
    "train_unknown_robot": ("train cfg_badrobot.yaml --out tr_out", "nobot", ("tr_out/keep.txt",)),
    "train_unknown_profile": ("train cfg_badprof.yaml --out tr_out", "noprofile", ("tr_out/keep.txt",)),
    "train_resume_no_checkpoint": (f"train {QUICKSTART} --out tr_out --resume", "tr_out", ("tr_out/keep.txt",)),
    "evaluate_missing_policy": ("evaluate --policy missing_run --episodes 1 --out ev_out", "missing_run",
                                ("ev_out/keep.txt",)),
    "evaluate_no_model_zip": ("evaluate --policy nomodel --episodes 1 --out ev_out", "nomodel", ("ev_out/keep.txt",)),
    "evaluate_corrupt_zip": ("evaluate --policy corrupt.zip --env sim2real/KukaReach-v0 --episodes 1 --out ev_out",
                             "corrupt.zip", ("ev_out/keep.txt",)),
    "export_missing_policy": ("export --policy missing_run --out ex.pt", "missing_run", ("ex.pt",)),
    "export_corrupt_zip": ("export --policy corrupt.zip --env sim2real/KukaReach-v0 --out ex.pt", "corrupt.zip",
                           ("ex.pt",)),
    "record_unknown_robot": ("record --robot nobot --excitation chirp --duration 1 --out rec_out", "nobot",
                             ("rec_out/keep.txt",)),
    "record_policy_bad_sidecar": ("record --robot kuka_iiwa --policy g.pt --duration 1 --out rec_out", "g.yaml",
                                  ("rec_out/keep.txt",)),
    "calibrate_missing_log": ("calibrate --log missing_log --robot kuka_iiwa --params damping --out cal.yaml",
                              "missing_log", ("cal.yaml",)),
    "calibrate_truncated_mcap": ("calibrate --log bag_trunc --robot kuka_iiwa --params damping --out cal.yaml",
                                 "bag_trunc", ("cal.yaml",)),
    "calibrate_unknown_param": ("calibrate --log bag --robot kuka_iiwa --params bogus --out cal.yaml", "bogus",
                                ("cal.yaml",)),
    "osi_missing_config": ("osi missing.yaml", "missing.yaml", ()),
    "osi_binary_config": ("osi notyaml.png", "notyaml.png", ()),
    "adapt_missing_config": ("adapt missing.yaml --out ad_out", "missing.yaml", ("ad_out/keep.txt",)),
    "adapt_binary_config": ("adapt notyaml.png --out ad_out", "notyaml.png", ("ad_out/keep.txt",)),
    "calibrate_missing_metadata": ("calibrate --log bag_nometa --robot kuka_iiwa --params damping --out cal.yaml",
                                   "bag_nometa", ("cal.yaml",)),
    "record_policy_not_torchscript": ("record --robot kuka_iiwa --policy ts.pt --duration 1 --out rec_out", "ts.pt",
                                      ("rec_out/keep.txt",)),
    "adapt_empty_image_folder": ("adapt cfg_adapt_empty.yaml --out ad_out", "emptyimgs", ("ad_out/keep.txt",)),
    "deploy_missing_policy": ("deploy --robot kuka_iiwa --policy missing.pt --duration 1", "missing.pt", ()),
    "deploy_missing_sidecar": ("deploy --robot kuka_iiwa --policy nosidecar.pt --duration 1", "nosidecar.yaml", ()),
    "deploy_malformed_sidecar": ("deploy --robot kuka_iiwa --policy g.pt --duration 1", "g.yaml", ()),
    # --out that is a file, a folder where a file is written, or lies under a file
    "train_out_is_file": (f"train {QUICKSTART} --out afile.txt", "afile.txt is a file", ("afile.txt",)),
    "train_out_under_file": (f"train {QUICKSTART} --out afile.txt/run", "lies under afile.txt", ("afile.txt",)),
    "evaluate_out_is_file": ("evaluate --policy missing_run --out afile.txt", "afile.txt is a file", ("afile.txt",)),
    "evaluate_out_under_file": ("evaluate --policy missing_run --out afile.txt/ev", "lies under afile.txt",
                                ("afile.txt",)),
    "export_out_is_dir": ("export --policy missing_run --out adir", "adir is a folder", ()),
    "export_out_under_file": ("export --policy missing_run --out afile.txt/p.pt", "lies under afile.txt",
                              ("afile.txt",)),
    "calibrate_out_under_file": (f"{CAL} --out afile.txt/cal.yaml", "lies under afile.txt", ("afile.txt",)),
    "adapt_out_is_file": ("adapt cfg_adapt_empty.yaml --out afile.txt", "afile.txt is a file", ("afile.txt",)),
    "record_out_under_file": ("record --robot kuka_iiwa --excitation chirp --duration 1 --out afile.txt/bag",
                              "lies under afile.txt", ("afile.txt",)),
    # seeds: integers in 0..2**32-1, the same rule for every command
    "envs_negative_seed": ("envs run sim2real/KukaReach-v0 --seed -1 --steps 5", "--seed", ()),
    "profile_sample_negative_seed": ("profile sample nominal --seed -3", "--seed", ()),
    "evaluate_negative_seed": ("evaluate --policy missing_run --seed -1 --out ev_out", "--seed", ("ev_out/keep.txt",)),
    "train_fractional_seed": (f"train {QUICKSTART} --seed 1.5 --out tr_out", "--seed", ("tr_out/keep.txt",)),
    "calibrate_huge_seed": (f"{CAL} --seed 4294967296 --out cal_new.yaml", "--seed", ()),
    "record_negative_seed": ("record --robot kuka_iiwa --excitation chirp --seed -2 --out rec_new", "--seed", ()),
    # ranges
    "calibrate_budget_zero": (f"{CAL} --budget 0 --out cal_new.yaml", "--budget", ()),
    "calibrate_budget_below_minimum": (f"{CAL} --budget 5 --out cal_new.yaml", "at least 7 simulator evaluations",
                                       ()),
    "calibrate_horizon_zero": (f"{CAL} --horizon 0 --out cal_new.yaml", "--horizon", ()),
    "calibrate_workers_zero": (f"{CAL} --workers 0 --out cal_new.yaml", "--workers", ()),
    "evaluate_workers_zero": ("evaluate --policy missing_run --workers 0 --out ev_out", "--workers",
                              ("ev_out/keep.txt",)),
    "deploy_goal_nan": ("deploy --robot kuka_iiwa --policy missing.pt --goal nan 0 0.4 --duration 1", "--goal", ()),
    "deploy_rate_zero": ("deploy --robot kuka_iiwa --policy missing.pt --rate 0 --duration 1", "--rate", ()),
    "deploy_goal_nan_in_params": ("deploy --params nan_goal.yaml --duration 1", "goal", ()),
    "record_duration_absurd": ("record --robot kuka_iiwa --excitation chirp --duration 1e12 --out rec_new",
                               "--duration", ()),
    # one --out/--resume rule for train, adapt and calibrate
    "calibrate_existing_out": (f"{CAL} --out cal.yaml", "cal.yaml: already holds a run", ("cal.yaml",)),
    "calibrate_resume_nothing": (f"{CAL} --resume --out cal_new.yaml", "no checkpoint to resume from", ()),
    "adapt_existing_run": ("adapt cfg_adapt_empty.yaml --out ad_run", "ad_run: already holds a run",
                           ("ad_run/checkpoint.pt",)),
    "adapt_resume_nothing": ("adapt cfg_adapt_empty.yaml --out ad_out --resume", "no checkpoint to resume from",
                             ("ad_out/keep.txt",)),
    "train_resume_other_robot": (f"train {PANDA} --out tr_run --resume", "robot: 'kuka_iiwa' -> 'franka_panda'",
                                 ("tr_run/run.yaml", "tr_run/checkpoints/latest.json")),
    "train_resume_other_network": ("train cfg_relu.yaml --out tr_run --resume", "activation: 'tanh' -> 'relu'",
                                   ("tr_run/run.yaml", "tr_run/checkpoints/latest.json")),
    # YAML input: duplicate keys, nesting and size limits
    "profile_validate_duplicate_key": ("profile validate dup.yaml", "duplicate key 'params'", ()),
    "train_config_duplicate_key": ("train cfg_dup.yaml --out tr_out", "duplicate key 'seed'", ("tr_out/keep.txt",)),
    "profile_validate_deep": ("profile validate deep.yaml", "nested deeper than 100 levels", ()),
    "profile_validate_huge": ("profile validate huge.yaml", "limited to 10 MB", ()),
    # profiles that would break the physics
    "profile_validate_mass_scale_1e308": ("profile validate heavy.yaml", "a scale factor must be <= 100", ()),
    "profile_validate_gravity_1e308": ("profile validate gravity.yaml",
                                       "gravity with operation add must lie in [-100, 100]", ()),
    "profile_sample_non_finite_draw": ("profile sample wild.yaml --robot kuka_iiwa", "params.wild: drew", ()),
    "envs_run_non_finite_draw": ("envs run sim2real/KukaReach-v0 --profile wild.yaml --steps 5", "params.wild: drew",
                                 ()),
}

# Outputs a failing case must not create.
NOT_CREATED = {name: ("cal_new.yaml", "cal_new.state.pkl", "rec_new", "rec_new.truth.yaml", "afile.txt/run")
               for name in CASES}


def _huge_profile(w: Path) -> None:
    """An 11 MB profile (made only where it is used: the other cases copy the scratch folder)."""
    line = "# " + "x" * 1021 + "\n"
    (w / "huge.yaml").write_text("params: {}\n" + line * 11 * 1024)


SETUP = {"profile_validate_huge": _huge_profile}

ADAPT_EMPTY = """method: dann
seed: 0
task: {type: classification, num_classes: 10, label: label}
data:
  source: {type: digits, split: source, domain: digits, repeats: 1}
  target: {type: folder, path: emptyimgs}
network: {image_size: 32, channels: [8], feature_dim: 16, head_hidden: 16, disc_hidden: 16}
train: {steps: 2, batch_size: 8}
"""


def _sim2real(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim2real", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def _make_workdir(w: Path) -> None:
    (w / "bad.yaml").write_text("params: [unclosed\n  - : :\n")
    (w / "notyaml.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01binary\xff")
    for d in ("adir", "emptyimgs", "nomodel"):
        (w / d).mkdir()
    (w / "corrupt.zip").write_bytes(b"this is not a zip file")
    (w / "nosidecar.pt").write_bytes(b"not torchscript")
    (w / "g.pt").write_bytes(b"not torchscript")
    (w / "g.yaml").write_text("a: [\n b: :\n")
    base = QUICKSTART.read_text()
    assert "id: sim2real/KukaReach-v0" in base and "\nrobot: kuka_iiwa" in base and "\nprofile: nominal" in base
    (w / "cfg_badenv.yaml").write_text(base.replace("id: sim2real/KukaReach-v0", "id: sim2real/Nope-v0"))
    (w / "cfg_badrobot.yaml").write_text(base.replace("\nrobot: kuka_iiwa", "\nrobot: nobot"))
    (w / "cfg_badprof.yaml").write_text(base.replace("\nprofile: nominal", "\nprofile: noprofile"))
    (w / "cfg_malformed.yaml").write_text(base.replace("\nrobot: kuka_iiwa", "\nxx: [\nrobot: kuka_iiwa"))
    (w / "cfg_adapt_empty.yaml").write_text(ADAPT_EMPTY)
    # A real 1 s rosbag2 (MCAP), and a truncated copy of it.
    rec = _sim2real("record --robot kuka_iiwa --seed 0 --excitation chirp --duration 1 --out bag".split(), w)
    assert rec.returncode == 0, rec.stderr
    shutil.copytree(w / "bag", w / "bag_trunc")
    mcap = w / "bag_trunc" / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 3])
    shutil.copytree(w / "bag", w / "bag_nometa")
    (w / "bag_nometa" / "metadata.yaml").unlink()
    (w / "ts.pt").write_bytes(b"not torchscript")
    (w / "ts.yaml").write_text(  # a valid sidecar: the error must be about ts.pt itself
        "format: sim2real-policy/1\nrobot: kuka_iiwa\nenv_id: sim2real/KukaReach-v0\n"
        "observation: {layout: [[joint_position, 7], [joint_velocity, 7], [ee_position, 3], [target_position, 3]]}\n"
        "action: {mode: joint_position_delta, size: 7, joints: [j1, j2, j3, j4, j5, j6, j7]}\n")
    # Pre-existing outputs that a failing command must leave alone.
    for out in ("tr_out", "ev_out", "rec_out", "ad_out"):
        (w / out).mkdir()
        (w / out / "keep.txt").write_text(f"pre-existing {out}\n")
    (w / "ex.pt").write_bytes(b"pre-existing export")
    (w / "cal.yaml").write_text("pre-existing: calibration\n")
    (w / "afile.txt").write_text("a file, not a folder\n")
    (w / "ad_run").mkdir()
    (w / "ad_run" / "checkpoint.pt").write_bytes(b"pre-existing adapt checkpoint")
    # a trained run of the quickstart config (its stored run.yaml and a checkpoint to resume)
    from sim2real.train.config import load_run_config

    (w / "tr_run" / "checkpoints" / "step_1000").mkdir(parents=True)
    (w / "tr_run" / "checkpoints" / "step_1000" / "model.zip").write_bytes(b"PK")
    (w / "tr_run" / "checkpoints" / "latest.json").write_text('{"dir": "step_1000"}')
    (w / "tr_run" / "run.yaml").write_text(yaml.safe_dump(load_run_config(str(QUICKSTART)).to_dict(), sort_keys=False))
    (w / "cfg_relu.yaml").write_text(base.replace("activation: tanh", "activation: relu"))
    (w / "cfg_dup.yaml").write_text(base + "seed: 3\n")
    (w / "dup.yaml").write_text("params: {}\ndescription: twice\nparams: {}\n")
    (w / "deep.yaml").write_text("params: " + "[" * 5000 + "]" * 5000 + "\n")
    (w / "heavy.yaml").write_text("params:\n  link_mass: {targets: all, distribution: constant, value: 1.0e+308, "
                                  "operation: scale}\n")
    (w / "gravity.yaml").write_text("params:\n  gravity: {distribution: constant, value: [0.0, 0.0, 1.0e+308], "
                                    "operation: add}\n")
    # each bound is finite, but high - low overflows: the draws are inf/nan
    (w / "wild.yaml").write_text("params:\n  wild: {param: com_offset, targets: all, distribution: uniform, "
                                 "low: [-1.7e+308, 0.0, 0.0], high: [1.7e+308, 0.0, 0.0], operation: add}\n")
    (w / "nan_goal.yaml").write_text("sim2real_deploy:\n  ros__parameters:\n    robot: kuka_iiwa\n"
                                     "    policy: missing.pt\n    goal: [.nan, 0.0, 0.4]\n")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Run every case once (4 at a time), each in its own copy of the scratch folder."""
    proto = tmp_path_factory.mktemp("cli_errors_proto")
    _make_workdir(proto)
    dirs = {}
    for name in CASES:
        d = tmp_path_factory.mktemp(name)
        shutil.copytree(proto, d, dirs_exist_ok=True)
        if name in SETUP:
            SETUP[name](d)
        dirs[name] = d
    before = {name: {p: (d / p).read_bytes() for p in CASES[name][2]} for name, d in dirs.items()}
    with cf.ThreadPoolExecutor(4) as pool:
        futs = {name: pool.submit(_sim2real, CASES[name][0].split(), d) for name, d in dirs.items()}
        out = {name: (f.result(), dirs[name]) for name, f in futs.items()}
    for name, (_, d) in out.items():
        for p, data in before[name].items():
            assert (d / p).read_bytes() == data, f"{name}: pre-existing {p} was changed"
    return out


def _error_lines(stderr: str) -> list[str]:
    # sim2real.sim imports PyBullet with its build-time banner silenced, so every line counts.
    return [ln for ln in stderr.splitlines() if ln.strip()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_error_line(name: str, results: dict) -> None:
    proc, workdir = results[name]
    argv, must_name, kept = CASES[name]
    command = argv.split()[0]
    lines = _error_lines(proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"sim2real {command}") and ": error: " in lines[0], lines[0]
    assert must_name in lines[0], lines[0]
    for p in kept:
        assert (workdir / p).exists(), f"pre-existing {p} removed"
    for p in NOT_CREATED[name]:
        assert not (workdir / p).exists(), f"{p} written by a failing command"
    # No half-written output next to a kept one (atomic writes leave no temp files behind).
    for p in kept:
        parent = (workdir / p).parent
        assert not [q.name for q in parent.iterdir() if q.name.startswith(".") and "tmp" in q.name], parent
