"""``sim2real osi``: online system identification around a policy trained with the dynamics
parameters μ in its observation: UP-OSI (Yu et al. 2017) or RMA (Kumar et al. 2021).

    sim2real osi configs/sysid/osi_kuka.yaml [--out runs/osi_kuka] [--quiet]   # method: up_osi (default)
    sim2real osi configs/sysid/rma_kuka.yaml [--out runs/rma_kuka] [--quiet]   # method: rma

``method: up_osi`` runs the universal policy (``universal_policy:`` run directory, trained with
``sim2real train configs/sysid/up_kuka.yaml``) on randomized envs, trains the OSI network (MLP
over the last ``history`` observation–action pairs -> μ̂) by regression, iterates with μ̂ in the
loop, and exports ``<out>/up_osi.pt`` (OSI + policy, one TorchScript module) with its
``up_osi.yaml`` sidecar and ``<out>/up_osi_osi.pt`` (OSI alone).

``method: rma`` runs the phase-1 base policy π(o, z = e(μ)) (``base_policy:`` run directory,
trained with ``sim2real train configs/sysid/rma_base_kuka.yaml``), trains the adaptation module
φ (temporal convolutions over the last ``history`` observation–action pairs -> ẑ) by regression
onto z, iterates with ẑ in the loop, and exports ``<out>/rma.pt`` (φ + policy, one TorchScript
module) with its ``rma.yaml`` sidecar and ``<out>/rma_adaptation.pt`` (φ alone).

Both write ``<out>/osi.json`` (per-iteration errors on held-out episodes run with the estimate in
the loop). Same as ``python -m sim2real.sysid.osi CONFIG``.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("osi", help="train an online identification network (UP-OSI or RMA) around a policy "
                              "and export both", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="OSI config YAML; its method: key picks up_osi (default) or rma (keys: see docs/sysid.md)")
    p.add_argument("--out", help="output directory (overrides the config's out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, print only the output files")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from sim2real.sysid.osi import load_config, run

    cfg = load_config(args.config)
    if args.out:
        cfg.out = args.out
    check_out_folder(cfg.out)
    if getattr(cfg, "universal_policy", None):
        check_universal_policy(cfg.universal_policy, cfg.env, cfg.profile, cfg.env_kwargs)
    import torch

    # one intra-op thread, as in `sim2real train`: several runs side by side on a small machine
    # otherwise spin each other's OpenMP threads (measured: a fit ~8x slower per epoch at load 9)
    torch.set_num_threads(1)
    report = run(cfg, progress=not args.quiet)
    if args.quiet:
        for path in report.get("files", {}).values():
            print(path)
    else:
        print(json.dumps(report, indent=2))
    return 0


def check_out_folder(out: str) -> None:
    """``--out`` (or the config's ``out``) is a folder that holds no earlier results (osi has no --resume)."""
    from sim2real._io import check_output_path
    from sim2real.errors import ConfigError

    path = check_output_path(out, folder=True)
    if path.is_dir() and any(path.iterdir()):
        raise ConfigError(f"{path}: already holds files ({', '.join(sorted(p.name for p in path.iterdir())[:4])}); "
                          "choose another --out", path=("--out",))


def check_universal_policy(policy: str, env_id: str, profile: Any, env_kwargs: dict) -> None:
    """The policy was trained on the universal-policy env of ``env_id`` with this profile: same observation
    (base + previous action + μ) and action spaces. Raises CheckpointError before any rollout."""
    from sim2real.errors import CheckpointError
    from sim2real.sysid.upenv import make_up_env
    from sim2real.train.policy import check_policy_fits_env, load_policy

    loaded = load_policy(policy)
    env = make_up_env(env_id, profile=profile, **env_kwargs)
    try:
        try:
            check_policy_fits_env(loaded, env, f"the universal-policy env of {env_id}")
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; UP-OSI needs a universal policy (trained on a sim2real.sysid.upenv env, "
                                  "e.g. configs/sysid/up_kuka.yaml, with the same profile)") from None
    finally:
        env.close()
