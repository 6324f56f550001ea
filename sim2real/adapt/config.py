"""Adapt run config: YAML schema and validation with file/key-precise :class:`ConfigError`.

See ``docs/adapt.md`` for the full key reference. Relative paths in ``data`` specs are
resolved against the config file's folder.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from sim2real.adapt.nets import NetworkConfig
from sim2real._check import Checker
from sim2real._io import read_yaml_file
from sim2real.errors import ConfigError

LR_SCHEDULES = ("constant", "cosine")
METHODS = ("source_only", "oracle", "dann", "adda", "pixelda", "cyclegan", "selfens")
PIXEL_METHODS = ("pixelda", "cyclegan")
DATA_TYPES = ("digits", "folder", "rosbag", "render")
TASK_TYPES = ("classification", "regression")

#: per-method options and their defaults
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "source_only": {},
    "oracle": {},
    "dann": {"gamma": 10.0, "domain_weight": 1.0, "lr_anneal": True, "separate_bn": False, "adabn": False,
             "entropy_weight": 0.0},
    "adda": {"pretrain_fraction": 0.4, "adversarial_lr": 2e-4, "disc_steps": 1},
    "pixelda": {"adversarial_weight": 1.0, "task_weight": 1.0, "content_weight": 0.1,
                "source_task_weight": 1.0, "disc_lr": 2e-4, "gen_lr": 2e-4, "adabn": False},
    "cyclegan": {"cycle_weight": 10.0, "identity_weight": 0.0, "source_task_weight": 0.5,
                 "disc_lr": 2e-4, "gen_lr": 2e-4, "adabn": False,
                 "semantic_weight": 0.0, "semantic_pretrain_fraction": 0.2},
    # French et al. 2018 (sim2real.adapt.selfens); geometric keys are forced to 0 for regression
    "selfens": {"consistency_weight": 0.3, "teacher_alpha": 0.99, "confidence_threshold": 0.968,
                "class_balance": 0.005, "rampup_fraction": 0.0, "predict_with": "teacher",
                "source_augment": True, "combine_batches": False, "translate": 2.0, "affine_std": 0.1, "hflip": False,
                "intensity_flip": False, "intensity_scale": [1.0, 1.0], "intensity_offset": [0.0, 0.0],
                "colour_gain": 0.0, "colour_field": 0.0, "blur_sigma": 0.0, "noise_std": 0.1,
                "equivariant_shift": 0.0, "fourier_beta": 0.0, "fourier_prob": 1.0, "hue_shift": 0.0},
}

DATA_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "digits": {"split": str, "domain": str, "repeats": int, "seed": int, "split_seed": int},
    "folder": {"path": str, "limit": int},
    "rosbag": {"path": str, "topic": str, "limit": int, "every": int},
    "render": {"env": str, "profile": (str, dict), "n": int, "seed": int, "robot": str,
               "max_random_steps": int, "image_size": int, "cache": str},
}
COMMON_DATA_KEYS = {"type": str, "style": (str, dict), "style_seed": int}


@dataclass
class TaskConfig:
    type: str = "classification"
    num_classes: int = 10
    label: str = "label"
    columns: list[str] = field(default_factory=list)

    @property
    def out_dim(self) -> int:
        return self.num_classes if self.type == "classification" else len(self.columns)

    @property
    def label_columns(self) -> list[str]:
        return [self.label] if self.type == "classification" else list(self.columns)


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (every optimizer's rate × 0.5 (1 + cos(π step / steps)))
    weight_decay: float = 0.0
    checkpoint_every: int = 500
    log_every: int = 50
    eval_every: int = 0
    threads: int = 0  # 0: leave torch's default


@dataclass
class AdaptConfig:
    method: str
    data: dict[str, Any]
    task: TaskConfig
    network: NetworkConfig
    train: TrainConfig
    options: dict[str, Any]
    seed: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # file the config came from
    raw: dict[str, Any] = field(default_factory=dict)
    base_dir: str | None = None  # relative data paths resolve against this

    def with_method(self, method: str) -> "AdaptConfig":
        """Same data/network/train, another method (baselines), that method's default options."""
        raw = copy.deepcopy(self.raw)
        raw["method"] = method
        for key in ("options", "description", "report"):  # baselines are shared by configs that differ only here
            raw.pop(key, None)
        return parse_config(raw, file=self.source, base_dir=Path(self.base_dir) if self.base_dir else None)


def _check(chk: Checker, value: Any, kind: type | tuple[type, ...], path: list[Any]) -> Any:
    """``value`` if it is of ``kind`` (an int is accepted, as a float, where a float is expected)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false",
                             dict: "a mapping", list: "a list"}[k] for k in kinds)
        chk.fail(path, f"expected {names}, got {value!r}")
    return value


def _fill(chk: Checker, cls: Any, raw: Any, path: list[Any]) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, type-checking against the defaults."""
    if raw is None:
        raw = {}
    _check(chk, raw, dict, path)
    inst = cls()
    for key, value in raw.items():
        if not hasattr(inst, key) or key.startswith("_"):
            allowed = sorted(k for k in vars(inst))
            chk.fail(path + [key], f"unknown key (allowed: {allowed})")
        default = getattr(inst, key)
        if isinstance(default, list):
            _check(chk, value, list, path + [key])
            elem = type(default[0]) if default else str
            value = [_check(chk, v, elem, path + [key, i]) for i, v in enumerate(value)]
        else:
            value = _check(chk, value, type(default), path + [key])
        setattr(inst, key, value)
    return inst


def _positive(chk: Checker, value: float, path: list[Any], allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        chk.fail(path, f"expected a {'non-negative' if allow_zero else 'positive'} number, got {value}")


def _data_spec(chk: Checker, raw: Any, path: list[Any], base_dir: Path | None) -> dict[str, Any]:
    _check(chk, raw, dict, path)
    kind = raw.get("type")
    if kind not in DATA_TYPES:
        chk.fail(path + ["type"], f"expected one of {list(DATA_TYPES)}, got {kind!r}")
    allowed = {**COMMON_DATA_KEYS, **DATA_KEYS[kind]}
    spec = dict(raw)
    for key, value in raw.items():
        if key not in allowed:
            chk.fail(path + [key], f"unknown key for type {kind} (allowed: {sorted(allowed)})")
        _check(chk, value, allowed[key], path + [key])
    need = {"folder": ["path"], "rosbag": ["path", "topic"], "digits": ["split"], "render": ["env", "n"]}[kind]
    for key in need:
        if key not in raw:
            chk.fail(path + [key], "required key missing")
    if kind == "digits":
        if raw["split"] not in ("source", "target_train", "target_test"):
            chk.fail(path + ["split"], f"expected source, target_train or target_test, got {raw['split']!r}")
        if raw.get("domain", "digits") not in ("digits", "photos"):
            chk.fail(path + ["domain"], f"expected digits or photos, got {raw['domain']!r}")
    for key in ("path", "cache"):
        if key in spec and base_dir is not None and not Path(spec[key]).is_absolute():
            spec[key] = str((base_dir / spec[key]).resolve())
    if "style" in raw:
        from sim2real.adapt.style import StyleShift

        try:
            StyleShift.from_config(raw["style"])
        except ConfigError as exc:
            chk.fail(path + ["style", *exc.key_path], exc.detail)
    return spec


def _selfens_options(chk: Checker, options: dict[str, Any], given: dict[str, Any], task: TaskConfig) -> None:
    """Range checks of the ``selfens`` options (in place); geometric augmentation is off for regression."""
    for key in ("consistency_weight", "class_balance", "rampup_fraction", "translate", "affine_std",
                "colour_gain", "colour_field", "blur_sigma", "noise_std", "equivariant_shift"):
        _positive(chk, options[key], ["options", key], allow_zero=True)
    for key in ("teacher_alpha", "confidence_threshold", "rampup_fraction"):
        if not 0.0 <= options[key] <= 1.0 or (key == "teacher_alpha" and options[key] == 1.0):
            chk.fail(["options", key],
                     f"expected a number in [0, 1{')' if key == 'teacher_alpha' else ']'}, got {options[key]}")
    for key, hi in (("fourier_beta", 0.5), ("fourier_prob", 1.0), ("hue_shift", 0.5)):
        if not 0.0 <= options[key] <= hi:  # a number: checked against the default's type above
            chk.fail(["options", key], f"expected a number in [0, {hi}], got {options[key]!r}")
    if options["predict_with"] not in ("teacher", "student"):
        chk.fail(["options", "predict_with"], f"expected teacher or student, got {options['predict_with']!r}")
    for key in ("intensity_scale", "intensity_offset"):
        value = options[key]
        if (len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or value[0] > value[1]):
            chk.fail(["options", key], f"expected [low, high] with low <= high, got {value!r}")
        options[key] = [float(v) for v in value]
    if options["equivariant_shift"] > 0:
        bad = [c for c in task.columns if not c.endswith(("_u", "_v"))]
        if task.type != "regression" or bad:
            chk.fail(["options", "equivariant_shift"],
                     "needs a regression task whose label columns are all pixel positions (*_u / *_v)"
                     + (f", got {bad}" if task.type == "regression" else ""))
    if task.type != "classification":
        for key in ("class_balance",):
            if given.get(key, 0) > 0:
                chk.fail(["options", key], "class balance needs a classification task")
        options["class_balance"] = 0.0
        for key in ("translate", "affine_std", "hflip"):
            if given.get(key):
                chk.fail(["options", key], "geometric augmentation moves pixels and would invalidate regression "
                         "labels; use photometric options only")
            options[key] = False if key == "hflip" else 0.0


def parse_config(raw: Any, file: str | None = None, base_dir: Path | None = None) -> AdaptConfig:
    """Validate a config mapping; ``file`` is only used in error messages."""
    chk = Checker(file)
    _check(chk, raw, dict, [])
    known = {"method", "seed", "data", "task", "network", "train", "options", "report", "description"}
    for key in raw:
        if key not in known:
            chk.fail([key], f"unknown key (allowed: {sorted(known)})")
    method = raw.get("method")
    if method not in METHODS:
        chk.fail(["method"], f"expected one of {list(METHODS)}, got {method!r}")
    seed = _check(chk, raw.get("seed", 0), int, ["seed"])

    task = _fill(chk, TaskConfig, raw.get("task"), ["task"])
    if task.type not in TASK_TYPES:
        chk.fail(["task", "type"], f"expected one of {list(TASK_TYPES)}, got {task.type!r}")
    if task.type == "classification" and task.num_classes < 2:
        chk.fail(["task", "num_classes"], "expected at least 2 classes")
    if task.type == "regression" and not task.columns:
        chk.fail(["task", "columns"], "regression needs a non-empty list of label columns")

    network = _fill(chk, NetworkConfig, raw.get("network"), ["network"])
    if network.input_norm not in ("fixed", "image"):
        chk.fail(["network", "input_norm"], f"expected fixed or image, got {network.input_norm!r}")
    if network.image_size < 8 or network.image_size % (2 ** len(network.channels)):
        chk.fail(["network", "image_size"],
                 f"image_size must be >= 8 and divisible by 2**len(channels) = {2 ** len(network.channels)}")
    for key in ("feature_dim", "head_hidden", "disc_hidden", "gen_width"):
        _positive(chk, getattr(network, key), ["network", key])
    for i, c in enumerate(network.channels):
        _positive(chk, c, ["network", "channels", i])
    if not network.channels:
        chk.fail(["network", "channels"], "expected at least one conv stage")

    train = _fill(chk, TrainConfig, raw.get("train"), ["train"])
    for key in ("steps", "batch_size", "lr"):
        _positive(chk, getattr(train, key), ["train", key])
    for key in ("checkpoint_every", "log_every", "weight_decay", "eval_every", "threads"):
        _positive(chk, getattr(train, key), ["train", key], allow_zero=True)
    if train.lr_schedule not in LR_SCHEDULES:
        chk.fail(["train", "lr_schedule"], f"expected one of {', '.join(LR_SCHEDULES)}, got {train.lr_schedule!r}")

    data_raw = raw.get("data")
    if data_raw is None:
        chk.fail(["data"], "required key missing")
    _check(chk, data_raw, dict, ["data"])
    data: dict[str, Any] = {}
    for key, value in data_raw.items():
        if key not in ("source", "target", "target_eval", "holdout_fraction"):
            chk.fail(["data", key], "unknown key (allowed: holdout_fraction, source, target, target_eval)")
        if key == "holdout_fraction":
            data[key] = _check(chk, value, float, ["data", key])
            if not 0.0 < data[key] < 1.0:
                chk.fail(["data", key], f"expected a number in (0, 1), got {value}")
        else:
            data[key] = _data_spec(chk, value, ["data", key], base_dir)
    need = ["target"] if method == "oracle" else ["source"] if method == "source_only" else ["source", "target"]
    for key in need:
        if key not in data:
            chk.fail(["data", key], f"required for method {method}")

    opts_raw = raw.get("options") or {}
    _check(chk, opts_raw, dict, ["options"])
    options = dict(METHOD_OPTIONS[method])
    for key, value in opts_raw.items():
        if key not in options:
            chk.fail(["options", key], f"unknown option for method {method} (allowed: {sorted(options)})")
        options[key] = _check(chk, value, type(options[key]), ["options", key])
    for key in ("entropy_weight",):
        if key in options:
            _positive(chk, options[key], ["options", key], allow_zero=True)
            if options[key] > 0 and task.type != "classification":
                chk.fail(["options", key], "entropy minimisation needs a classification task")
    if method == "adda" and not 0.0 < options["pretrain_fraction"] < 1.0:
        chk.fail(["options", "pretrain_fraction"], "expected a number in (0, 1)")
    if method == "selfens":
        _selfens_options(chk, options, opts_raw, task)
    if method == "dann" and options["lr_anneal"] and train.lr_schedule != "constant":
        chk.fail(["train", "lr_schedule"], "dann anneals its own learning rate (options.lr_anneal); set "
                 "lr_anneal: false to use train.lr_schedule")
    if method == "cyclegan":
        _positive(chk, options["semantic_weight"], ["options", "semantic_weight"], allow_zero=True)
        if options["semantic_weight"] > 0 and not 0.0 < options["semantic_pretrain_fraction"] < 1.0:
            chk.fail(["options", "semantic_pretrain_fraction"], "expected a number in (0, 1)")

    report = {"baselines": True, "grid_rows": 8}
    rep_raw = raw.get("report") or {}
    _check(chk, rep_raw, dict, ["report"])
    for key, value in rep_raw.items():
        if key not in report:
            chk.fail(["report", key], f"unknown key (allowed: {sorted(report)})")
        report[key] = _check(chk, value, type(report[key]), ["report", key])

    return AdaptConfig(method=method, data=data, task=task, network=network, train=train, options=options,
                       seed=seed, report=report, source=file, raw=copy.deepcopy(raw),
                       base_dir=None if base_dir is None else str(base_dir))


def load_config(path: str | Path) -> AdaptConfig:
    """Read and validate an adapt config YAML file."""
    path = Path(path)
    raw = read_yaml_file(path, what="config")
    cfg = parse_config(raw, file=str(path), base_dir=path.resolve().parent)
    return cfg
