"""Robust training: SB3 run configs, EPOpt-ε, ADR, checkpoints, evaluation sweeps, policy export.

Heavy dependencies (torch, SB3, PyBullet) are imported by the submodules that need them::

    from sim2real.train.config import load_run_config
    from sim2real.train.trainer import train
    result = train(load_run_config("configs/train/kuka_reach.yaml"), "runs/reach")
"""

from sim2real.train.config import RunConfig, load_run_config, parse_run_config

__all__ = ["RunConfig", "load_run_config", "parse_run_config"]
