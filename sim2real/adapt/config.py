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


def _check(value: Any, kind: type | tuple[type, ...], file: str | None, path: list[Any]) -> Any:
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
        raise ConfigError(f"expected {names}, got {value!r}", file=file, path=path)
    return value


def _fill(cls: Any, raw: Any, file: str | None, path: list[Any]) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, type-checking against the defaults."""
    if raw is None:
        raw = {}
    _check(raw, dict, file, path)
    inst = cls()
    for key, value in raw.items():
        if not hasattr(inst, key) or key.startswith("_"):
            allowed = sorted(k for k in vars(inst))
            raise ConfigError(f"unknown key (allowed: {allowed})", file=file, path=path + [key])
        default = getattr(inst, key)
        if isinstance(default, list):
            _check(value, list, file, path + [key])
            elem = type(default[0]) if default else str
            value = [_check(v, elem, file, path + [key, i]) for i, v in enumerate(value)]
        else:
            value = _check(value, type(default), file, path + [key])
        setattr(inst, key, value)
    return inst


def _positive(value: float, file: str | None, path: list[Any], allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"expected a {'non-negative' if allow_zero else 'positive'} number, got {value}",
                          file=file, path=path)


def _data_spec(raw: Any, file: str | None, path: list[Any], base_dir: Path | None) -> dict[str, Any]:
    _check(raw, dict, file, path)
    kind = raw.get("type")
    if kind not in DATA_TYPES:
        raise ConfigError(f"expected one of {list(DATA_TYPES)}, got {kind!r}", file=file, path=path + ["type"])
    allowed = {**COMMON_DATA_KEYS, **DATA_KEYS[kind]}
    spec = dict(raw)
    for key, value in raw.items():
        if key not in allowed:
            raise ConfigError(f"unknown key for type {kind} (allowed: {sorted(allowed)})", file=file, path=path + [key])
        _check(value, allowed[key], file, path + [key])
    need = {"folder": ["path"], "rosbag": ["path", "topic"], "digits": ["split"], "render": ["env", "n"]}[kind]
    for key in need:
        if key not in raw:
            raise ConfigError("required key missing", file=file, path=path + [key])
    if kind == "digits":
        if raw["split"] not in ("source", "target_train", "target_test"):
            raise ConfigError(f"expected source, target_train or target_test, got {raw['split']!r}",
                              file=file, path=path + ["split"])
        if raw.get("domain", "digits") not in ("digits", "photos"):
            raise ConfigError(f"expected digits or photos, got {raw['domain']!r}", file=file, path=path + ["domain"])
    for key in ("path", "cache"):
        if key in spec and base_dir is not None and not Path(spec[key]).is_absolute():
            spec[key] = str((base_dir / spec[key]).resolve())
    if "style" in raw:
        from sim2real.adapt.style import StyleShift

        try:
            StyleShift.from_config(raw["style"])
        except ConfigError as exc:
            raise ConfigError(exc.detail, file=file, path=path + ["style", *exc.key_path]) from None
    return spec


def _selfens_options(options: dict[str, Any], given: dict[str, Any], task: TaskConfig, file: str | None) -> None:
    """Range checks of the ``selfens`` options (in place); geometric augmentation is off for regression."""
    for key in ("consistency_weight", "class_balance", "rampup_fraction", "translate", "affine_std",
                "colour_gain", "colour_field", "blur_sigma", "noise_std", "equivariant_shift"):
        _positive(options[key], file, ["options", key], allow_zero=True)
    for key in ("teacher_alpha", "confidence_threshold", "rampup_fraction"):
        if not 0.0 <= options[key] <= 1.0 or (key == "teacher_alpha" and options[key] == 1.0):
            raise ConfigError(f"expected a number in [0, 1{')' if key == 'teacher_alpha' else ']'}, got {options[key]}",
                              file=file, path=["options", key])
    for key, hi in (("fourier_beta", 0.5), ("fourier_prob", 1.0), ("hue_shift", 0.5)):
        if not 0.0 <= options[key] <= hi:  # a number: checked against the default's type above
            raise ConfigError(f"expected a number in [0, {hi}], got {options[key]!r}", file=file, path=["options", key])
    if options["predict_with"] not in ("teacher", "student"):
        raise ConfigError(f"expected teacher or student, got {options['predict_with']!r}", file=file,
                          path=["options", "predict_with"])
    for key in ("intensity_scale", "intensity_offset"):
        value = options[key]
        if (len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or value[0] > value[1]):
            raise ConfigError(f"expected [low, high] with low <= high, got {value!r}", file=file, path=["options", key])
        options[key] = [float(v) for v in value]
    if options["equivariant_shift"] > 0:
        bad = [c for c in task.columns if not c.endswith(("_u", "_v"))]
        if task.type != "regression" or bad:
            raise ConfigError("needs a regression task whose label columns are all pixel positions (*_u / *_v)"
                              + (f", got {bad}" if task.type == "regression" else ""),
                              file=file, path=["options", "equivariant_shift"])
    if task.type != "classification":
        for key in ("class_balance",):
            if given.get(key, 0) > 0:
                raise ConfigError("class balance needs a classification task", file=file, path=["options", key])
        options["class_balance"] = 0.0
        for key in ("translate", "affine_std", "hflip"):
            if given.get(key):
                raise ConfigError("geometric augmentation moves pixels and would invalidate regression labels; "
                                  "use photometric options only", file=file, path=["options", key])
            options[key] = False if key == "hflip" else 0.0


def parse_config(raw: Any, file: str | None = None, base_dir: Path | None = None) -> AdaptConfig:
    """Validate a config mapping; ``file`` is only used in error messages."""
    _check(raw, dict, file, [])
    known = {"method", "seed", "data", "task", "network", "train", "options", "report", "description"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key (allowed: {sorted(known)})", file=file, path=[key])
    method = raw.get("method")
    if method not in METHODS:
        raise ConfigError(f"expected one of {list(METHODS)}, got {method!r}", file=file, path=["method"])
    seed = _check(raw.get("seed", 0), int, file, ["seed"])

    task = _fill(TaskConfig, raw.get("task"), file, ["task"])
    if task.type not in TASK_TYPES:
        raise ConfigError(f"expected one of {list(TASK_TYPES)}, got {task.type!r}", file=file, path=["task", "type"])
    if task.type == "classification" and task.num_classes < 2:
        raise ConfigError("expected at least 2 classes", file=file, path=["task", "num_classes"])
    if task.type == "regression" and not task.columns:
        raise ConfigError("regression needs a non-empty list of label columns", file=file, path=["task", "columns"])

    network = _fill(NetworkConfig, raw.get("network"), file, ["network"])
    if network.input_norm not in ("fixed", "image"):
        raise ConfigError(f"expected fixed or image, got {network.input_norm!r}", file=file, path=["network", "input_norm"])
    if network.image_size < 8 or network.image_size % (2 ** len(network.channels)):
        raise ConfigError(f"image_size must be >= 8 and divisible by 2**len(channels) = {2 ** len(network.channels)}",
                          file=file, path=["network", "image_size"])
    for key in ("feature_dim", "head_hidden", "disc_hidden", "gen_width"):
        _positive(getattr(network, key), file, ["network", key])
    for i, c in enumerate(network.channels):
        _positive(c, file, ["network", "channels", i])
    if not network.channels:
        raise ConfigError("expected at least one conv stage", file=file, path=["network", "channels"])

    train = _fill(TrainConfig, raw.get("train"), file, ["train"])
    for key in ("steps", "batch_size", "lr"):
        _positive(getattr(train, key), file, ["train", key])
    for key in ("checkpoint_every", "log_every", "weight_decay", "eval_every", "threads"):
        _positive(getattr(train, key), file, ["train", key], allow_zero=True)
    if train.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"expected one of {', '.join(LR_SCHEDULES)}, got {train.lr_schedule!r}",
                          file=file, path=["train", "lr_schedule"])

    data_raw = raw.get("data")
    if data_raw is None:
        raise ConfigError("required key missing", file=file, path=["data"])
    _check(data_raw, dict, file, ["data"])
    data: dict[str, Any] = {}
    for key, value in data_raw.items():
        if key not in ("source", "target", "target_eval", "holdout_fraction"):
            raise ConfigError("unknown key (allowed: holdout_fraction, source, target, target_eval)",
                              file=file, path=["data", key])
        if key == "holdout_fraction":
            data[key] = _check(value, float, file, ["data", key])
            if not 0.0 < data[key] < 1.0:
                raise ConfigError(f"expected a number in (0, 1), got {value}", file=file, path=["data", key])
        else:
            data[key] = _data_spec(value, file, ["data", key], base_dir)
    need = ["target"] if method == "oracle" else ["source"] if method == "source_only" else ["source", "target"]
    for key in need:
        if key not in data:
            raise ConfigError(f"required for method {method}", file=file, path=["data", key])

    opts_raw = raw.get("options") or {}
    _check(opts_raw, dict, file, ["options"])
    options = dict(METHOD_OPTIONS[method])
    for key, value in opts_raw.items():
        if key not in options:
            raise ConfigError(f"unknown option for method {method} (allowed: {sorted(options)})",
                              file=file, path=["options", key])
        options[key] = _check(value, type(options[key]), file, ["options", key])
    for key in ("entropy_weight",):
        if key in options:
            _positive(options[key], file, ["options", key], allow_zero=True)
            if options[key] > 0 and task.type != "classification":
                raise ConfigError("entropy minimisation needs a classification task", file=file, path=["options", key])
    if method == "adda" and not 0.0 < options["pretrain_fraction"] < 1.0:
        raise ConfigError("expected a number in (0, 1)", file=file, path=["options", "pretrain_fraction"])
    if method == "selfens":
        _selfens_options(options, opts_raw, task, file)
    if method == "dann" and options["lr_anneal"] and train.lr_schedule != "constant":
        raise ConfigError("dann anneals its own learning rate (options.lr_anneal); set lr_anneal: false to use "
                          "train.lr_schedule", file=file, path=["train", "lr_schedule"])
    if method == "cyclegan":
        _positive(options["semantic_weight"], file, ["options", "semantic_weight"], allow_zero=True)
        if options["semantic_weight"] > 0 and not 0.0 < options["semantic_pretrain_fraction"] < 1.0:
            raise ConfigError("expected a number in (0, 1)", file=file, path=["options", "semantic_pretrain_fraction"])

    report = {"baselines": True, "grid_rows": 8}
    rep_raw = raw.get("report") or {}
    _check(rep_raw, dict, file, ["report"])
    for key, value in rep_raw.items():
        if key not in report:
            raise ConfigError(f"unknown key (allowed: {sorted(report)})", file=file, path=["report", key])
        report[key] = _check(value, type(report[key]), file, ["report", key])

    return AdaptConfig(method=method, data=data, task=task, network=network, train=train, options=options,
                       seed=seed, report=report, source=file, raw=copy.deepcopy(raw),
                       base_dir=None if base_dir is None else str(base_dir))


def load_config(path: str | Path) -> AdaptConfig:
    """Read and validate an adapt config YAML file."""
    path = Path(path)
    raw = read_yaml_file(path, what="config")
    cfg = parse_config(raw, file=str(path), base_dir=path.resolve().parent)
    return cfg
