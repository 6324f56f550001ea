"""History windows for online identification (UP-OSI, RMA): rollouts in a UP env that record,
at every step, the last ``H`` observations of the history env (oldest first) with the episode's
true μ.

The history env's observation is the UP env's observation without the trailing μ (it holds the
previous action, so a window is a sequence of observation–action pairs). Windows shorter than
``H`` at the start of an episode are padded with the reset observation, as the deployment node's
history buffer is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

#: ``(UP observation (n,), window (H·d,), steps since reset) -> action``
WindowActor = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass
class OSIData:
    """Histories ``X [N, H·d]`` (oldest first) and targets ``Y [N, k]`` (the true μ, or what a
    method regresses on it); ``episode [N]`` for splits; ``step [N]``: number of env steps taken
    when the window ends (windows with ``step < H`` are padded with the reset observation)."""

    X: np.ndarray
    Y: np.ndarray
    episode: np.ndarray
    step: np.ndarray | None = None
    window: int = 1  # H of the windows in X (set by collect; needed by `last`)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def steps(self) -> np.ndarray:
        """``step`` or, when absent, a large value for every sample (all windows full)."""
        return self.step if self.step is not None else np.full(len(self), np.iinfo(np.int64).max)

    def last(self, history: int) -> "OSIData":
        """The same samples with only the last ``history`` observations of each window."""
        d = self.X.shape[1] // self.window
        if not 1 <= history <= self.window:
            raise ValueError(f"history {history} not in [1, {self.window}]")
        return OSIData(self.X[:, -history * d:], self.Y, self.episode, self.step, window=history)

    def select(self, mask: np.ndarray) -> "OSIData":
        return OSIData(self.X[mask], self.Y[mask], self.episode[mask],
                       None if self.step is None else self.step[mask], window=self.window)

    def with_targets(self, Y: np.ndarray) -> "OSIData":
        """The same windows with other targets ``Y [N, m]``."""
        return OSIData(self.X, Y, self.episode, self.step, window=self.window)

    @staticmethod
    def concat(parts: Sequence["OSIData"]) -> "OSIData":
        offset, eps = 0, []
        for p in parts:
            eps.append(p.episode + offset)
            offset += int(p.episode.max()) + 1 if len(p) else 0
        step = None if any(p.step is None for p in parts) else np.concatenate([p.steps() for p in parts])
        return OSIData(np.concatenate([p.X for p in parts]), np.concatenate([p.Y for p in parts]), np.concatenate(eps),
                       step, window=parts[0].window if parts else 1)


def rollout_windows(env: Any, act: WindowActor, episodes: int, history: int, *, seed: int = 0,
                    every: int = 1) -> tuple[OSIData, list[dict[str, float]]]:
    """Run ``act`` in the UP env ``env`` and record (window of the last ``history`` history-env
    observations, true μ) after every step.

    :param env: a UP env (:func:`~sim2real.sysid.upenv.make_up_env`), episode ``e`` reset with
        seed ``seed + e``; any μ estimate set on it is cleared at the end of each episode
    :param act: called before each step with the UP observation, the padded window ending with
        the current observation (what the deployed policy sees) and the steps since reset
    :param every: keep one sample every ``every`` steps
    :returns: data (``Y`` = true μ, normalised) and per-episode stats: ``return``, ``success``
        (``info["is_success"]`` at the last step, as ``sim2real evaluate``), ``reached`` (at any step)
    """
    k = int(env.get_wrapper_attr("mu_dim"))
    X, Y, E, S, stats = [], [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        base_dim = obs.shape[0] - k
        hist: deque[np.ndarray] = deque([obs[:base_dim]] * history, maxlen=history)
        ret, reached, done, t = 0.0, False, False, 0
        while not done:
            a = act(obs, np.concatenate(hist), t)
            obs, r, term, trunc, info = env.step(a)
            hist.append(obs[:base_dim])
            t += 1
            ret += float(r)
            reached = reached or bool(info.get("is_success", False))
            done = term or trunc
            if t % every == 0:
                X.append(np.concatenate(hist))
                Y.append(info["mu"])
                E.append(ep)
                S.append(t)
        env.get_wrapper_attr("set_estimate")(None)
        stats.append({"return": ret, "success": float(bool(info.get("is_success", False))), "reached": float(reached)})
    d = int(env.observation_space.shape[0]) - k
    data = OSIData(np.asarray(X, dtype=np.float32).reshape(-1, history * d), np.asarray(Y, dtype=np.float32).reshape(-1, k),
                   np.asarray(E, dtype=np.int64), np.asarray(S, dtype=np.int64), window=history)
    return data, stats


M = TypeVar("M")


def aggregate_and_fit(iterations: int, collect: Callable[[M | None, int], tuple[OSIData, list[dict[str, float]]]],
                      fit: Callable[[OSIData], M], evaluate: Callable[[M, OSIData], dict[str, Any]], *,
                      episodes: int, seed: int = 0, desc: str = "fit", progress: bool = True,
                      show: Sequence[str] = ()) -> tuple[M, list[dict[str, Any]]]:
    """The iterated loop of UP-OSI and RMA phase 2 (DAgger-style data aggregation).

    Iteration ``it`` collects ``collect(model, seed + it · episodes)`` with the model of the
    previous iteration (None in the first: the true μ in the loop), fits a new model on all data
    collected so far, ``fit(data)``, and scores it, ``evaluate(model, data)``.

    :returns: the last model and one row per iteration: ``iteration``, ``samples`` (windows
        trained on), the keys of ``evaluate``, ``collect_success`` (last-step success rate of
        the episodes collected); ``show`` names the row keys shown on the progress bar
    """
    from tqdm.auto import tqdm

    parts: list[OSIData] = []
    rows: list[dict[str, Any]] = []
    model: M | None = None
    bar = tqdm(range(iterations), desc=desc, disable=not progress)
    for it in bar:
        data, stats = collect(model, seed + it * episodes)
        parts.append(data)
        train = OSIData.concat(parts)
        model = fit(train)
        rows.append({"iteration": it, "samples": len(train), **evaluate(model, train),
                     "collect_success": float(np.mean([st["success"] for st in stats]))})
        bar.set_postfix({key: f"{rows[-1][key]:.4g}" for key in show})
    if model is None:
        raise ValueError("iterations must be >= 1")
    return model, rows


def full_window_errors(err: np.ndarray, step: np.ndarray, min_step: int) -> dict[str, Any]:
    """Statistics of ``err [N, m]`` over the windows with ``step >= min_step``: ``mse``, ``mae``,
    ``rmse`` (scalars over samples and components), ``rmse_per_dim`` (list of m) and ``samples``
    (windows scored). With no such window (e.g. every episode ended before ``min_step`` steps) the
    errors are NaN and ``samples`` is 0: no number rather than one over padded windows."""
    err = np.asarray(err, dtype=np.float64)
    keep = np.asarray(step) >= min_step
    if not keep.any():
        nan = float("nan")
        return {"mse": nan, "mae": nan, "rmse": nan, "rmse_per_dim": [nan] * err.shape[1], "samples": 0}
    e = err[keep]
    mse = float(np.mean(e ** 2))
    return {"mse": mse, "mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(mse)),
            "rmse_per_dim": np.sqrt(np.mean(e ** 2, axis=0)).tolist(), "samples": int(keep.sum())}


def error_by_step(err: np.ndarray, step: np.ndarray, edges: Sequence[int] = (1, 5, 10, 25, 50, 100, 200, 400),
                  baseline: np.ndarray | None = None) -> list[dict[str, float]]:
    """RMS of ``err [N, m]`` per bin of steps since reset: ``[{"from", "to", "rmse", "n"}]``
    (``to`` exclusive; the last bin is open, ``to`` = the largest step + 1); empty bins are left out.
    With ``baseline [N, m]`` (e.g. the error of always guessing the mean) each bin also has
    ``mean_guess_rmse``, its RMS over the same samples."""
    step = np.asarray(step)
    top = int(step.max()) + 1 if len(step) else 1
    bounds = [e for e in edges if e < top] + [top]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        m = (step >= lo) & (step < hi)
        if m.any():
            row = {"from": int(lo), "to": int(hi), "rmse": float(np.sqrt(np.mean(err[m] ** 2))), "n": int(m.sum())}
            if baseline is not None:
                row["mean_guess_rmse"] = float(np.sqrt(np.mean(baseline[m] ** 2)))
            out.append(row)
    return out
