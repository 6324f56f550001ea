"""Methods, training loop, checkpoints, config validation and CLI of sim2real.adapt."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from sim2real.adapt.config import load_config, parse_config
from sim2real.adapt.methods import Method
from sim2real.adapt.nets import GradientReversal, dann_lambda, grad_reverse
from sim2real.adapt.trainer import load_domains, read_checkpoint, train
from sim2real.errors import CheckpointError, ConfigError

from adapt_tiny import interrupt_at_step, tiny_raw

TINY: dict[str, Any] = tiny_raw("dann", steps=4, checkpoint_every=2)


def tiny(method: str, **train_kw: Any) -> Any:
    raw = copy.deepcopy(TINY)
    raw["method"] = method
    raw["train"].update(train_kw)
    return parse_config(raw, file="tiny.yaml")


@pytest.fixture(scope="module")
def domains():
    return load_domains(tiny("dann"), None, progress=False)


def test_gradient_reversal_flips_and_scales():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    (grad_reverse(x, 0.3) * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w)
    x.grad = None
    layer = GradientReversal(2.0)
    y = layer(x)
    torch.testing.assert_close(y, x)  # identity forward
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -2.0 * w)
    assert dann_lambda(0.0) == 0.0 and 0.99 < dann_lambda(1.0) < 1.0
    assert dann_lambda(0.1) < dann_lambda(0.5)


def _weights(method: Method) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": t.clone() for k, m in method.modules.items() for n, t in m.state_dict().items()}


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", ["source_only", "oracle", "dann", "adda", "pixelda", "cyclegan"])
def test_method_trains_checkpoints_and_resumes_exactly(name: str, domains, tmp_path: Path, monkeypatch):
    cfg = tiny(name)
    full, summary = train(cfg, tmp_path / "full", domains, progress=False, log_tensorboard=False)
    assert read_checkpoint(tmp_path / "full" / "checkpoint.pt")["step"] == 4
    assert 0.0 <= summary["metrics"]["accuracy"] <= 1.0
    assert (tmp_path / "full" / "encoder.pt").is_file() and (tmp_path / "full" / "predictor.pt").is_file()

    # interrupt a second run after the step-2 checkpoint, then resume it
    undo = interrupt_at_step(monkeypatch, type(full), 2, _Interrupt)
    with pytest.raises(_Interrupt):
        train(cfg, tmp_path / "cut", domains, progress=False, log_tensorboard=False)
    assert read_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 2
    undo()
    resumed, _ = train(cfg, tmp_path / "cut", domains, resume=True, progress=False, log_tensorboard=False)
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=f"{name}: {k} differs after resume")
    if name in ("pixelda", "cyclegan"):
        x = domains.xs[:2].float() / 255
        assert resumed.translate(x).shape == x.shape


def test_resume_refuses_other_config(domains, tmp_path: Path):
    train(tiny("source_only"), tmp_path, domains, progress=False, log_tensorboard=False)
    with pytest.raises(CheckpointError, match="different config"):
        train(tiny("source_only", lr=0.01), tmp_path, domains, resume=True, progress=False, log_tensorboard=False)


def test_regression_task_learns_normalised_targets(domains, tmp_path: Path):
    raw = copy.deepcopy(TINY)
    raw.update(method="source_only", task={"type": "regression", "columns": ["label"]})
    cfg = parse_config(raw)
    method, summary = train(cfg, tmp_path, load_domains(cfg, None, False), progress=False, log_tensorboard=False)
    assert "error" in summary["metrics"]
    assert method.head.scale.item() > 1.0  # label std of digits 0-9 ≈ 2.9


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"method": "gan"}, r"cfg\.yaml: method: expected one of"),
        ({"train": {"lr": "fast"}}, r"cfg\.yaml: train\.lr: expected a number"),
        ({"train": {"steps": 0}}, r"train\.steps: expected a positive"),
        ({"network": {"channels": [8, "x"]}}, r"network\.channels\[1\]: expected an integer"),
        ({"network": {"image_size": 30}}, r"network\.image_size: image_size must be"),
        ({"network": {"widht": 3}}, r"network\.widht: unknown key"),
        ({"options": {"gama": 3}}, r"options\.gama: unknown option for method dann"),
        ({"data": {"target": {"type": "folder"}}}, r"data\.target\.path: required key missing"),
        ({"data": {"source": {"type": "digits", "split": "source", "style": {"blur": 1}}}},
         r"data\.source\.style\.blur: unknown style key"),
        ({"data": {"source": {"type": "digits", "split": "source"}}}, r"data\.target: required for method dann"),
        ({"task": {"type": "regression"}}, r"task\.columns: regression needs"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, patch: dict, match: str):
    raw = copy.deepcopy(TINY)
    for k, v in patch.items():
        if isinstance(v, dict) and k in ("train", "network"):
            raw[k].update(v)
        else:
            raw[k] = v
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, raw))


def test_shipped_configs_validate():
    root = Path(__file__).resolve().parents[1] / "configs" / "adapt"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_config(f)


def test_cli_one_line_errors(tmp_path: Path, capsys):
    from sim2real.cli.main import main

    bad = _write(tmp_path, {**TINY, "method": "nope"})
    assert main(["adapt", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sim2real adapt: error:") and "method" in err[0]
    raw = copy.deepcopy(TINY)
    raw["data"]["target"] = {"type": "folder", "path": "no_such_dir"}
    assert main(["adapt", str(_write(tmp_path, raw)), "--out", str(tmp_path / "o")]) == 2
    assert "no_such_dir: no such dataset folder" in capsys.readouterr().err


def test_cli_trains_and_reports(tmp_path: Path):
    from sim2real.cli.main import main

    raw = copy.deepcopy(TINY)
    raw["method"] = "pixelda"
    out = tmp_path / "run"
    assert main(["adapt", str(_write(tmp_path, raw)), "--out", str(out), "--no-progress"]) == 0
    import json

    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"pixelda", "source_only", "oracle"}
    assert "gap_closed" in report and (out / "grid.png").stat().st_size > 1000
    assert "| source_only |" in (out / "report.md").read_text()
    assert list((out / "tb").iterdir())
    # --resume on a finished run reloads instead of retraining
    assert main(["adapt", str(_write(tmp_path, raw)), "--out", str(out), "--resume", "--no-progress"]) == 0


def test_cli_dataset_only_writes_the_sets_training_uses(tmp_path: Path):
    """``--dataset-only`` writes the same images and labels that ``load_domains`` trains on
    (same per-set seeds and one digit split)."""
    from sim2real.adapt.images import load_image_folder
    from sim2real.cli.main import main

    raw = copy.deepcopy(TINY)
    raw["seed"] = 4
    out = tmp_path / "ds"
    assert main(["adapt", str(_write(tmp_path, raw)), "--dataset-only", "--out", str(out), "--no-progress"]) == 0
    domains = load_domains(parse_config(raw), None, progress=False)
    for name, (x, y) in {"source": (domains.xs, domains.ys), "target": (domains.xt, domains.yt),
                         "target_eval": (domains.x_eval, domains.y_eval)}.items():
        written = load_image_folder(out / "data" / name)
        assert np.array_equal(written.images, x.permute(0, 2, 3, 1).numpy()), name
        np.testing.assert_array_equal(written.labels[:, 0], y.numpy().ravel())
