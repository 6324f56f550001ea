"""Control-loop statistics: period jitter, observation age, inference time, latency."""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningSeries:
    """Fixed-size ring of samples (seconds) with percentiles; cheap to append at kHz rates."""

    def __init__(self, size: int = 100_000) -> None:
        self._buf = np.zeros(size)
        self._n = 0

    def add(self, value: float) -> None:
        self._buf[self._n % len(self._buf)] = value
        self._n += 1

    @property
    def count(self) -> int:
        return self._n

    def values(self) -> np.ndarray:
        return self._buf[: min(self._n, len(self._buf))]

    def summary(self) -> dict[str, float]:
        """mean, p50, p99, max in milliseconds (NaN when empty)."""
        v = self.values()
        if v.size == 0:
            return {"mean_ms": float("nan"), "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        p50, p99 = np.percentile(v, [50, 99])
        return {"mean_ms": float(v.mean() * 1e3), "p50_ms": float(p50 * 1e3), "p99_ms": float(p99 * 1e3),
                "max_ms": float(v.max() * 1e3)}


class LoopStats:
    """Per-tick measurements of the deployment loop.

    - ``jitter``: |actual period − nominal period| between consecutive ticks, s
    - ``obs_age``: tick time − arrival time of the state used, s
    - ``inference``: policy call duration, s
    - ``latency``: state arrival → command publish, s
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.jitter, self.obs_age, self.inference, self.latency = (RunningSeries() for _ in range(4))
        self.ticks = 0
        self.commands = 0
        self.states = 0
        self.overruns = 0
        self._last_tick: float | None = None

    def tick(self, now: float) -> None:
        if self._last_tick is not None:
            actual = now - self._last_tick
            self.jitter.add(abs(actual - self.period))
            if actual > 1.5 * self.period:
                self.overruns += 1
        self._last_tick = now
        self.ticks += 1

    def summary(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks, "commands": self.commands, "states_received": self.states,
            "overruns": self.overruns, "jitter": self.jitter.summary(), "obs_age": self.obs_age.summary(),
            "inference": self.inference.summary(), "latency": self.latency.summary(),
        }

    def diagnostic_values(self) -> list[dict[str, str]]:
        """Flat key/value list for ``diagnostic_msgs/KeyValue``."""
        out = []
        for key, value in self.summary().items():
            if isinstance(value, dict):
                out += [{"key": f"{key}.{k}", "value": f"{v:.4f}"} for k, v in value.items()]
            else:
                out.append({"key": key, "value": str(value)})
        return out

    def format(self) -> str:
        s = self.summary()
        lines = [f"ticks {s['ticks']}, commands {s['commands']}, states received {s['states_received']}, "
                 f"overruns {s['overruns']}",
                 f"{'':14s}{'mean ms':>10s}{'p50 ms':>10s}{'p99 ms':>10s}{'max ms':>10s}"]
        for key in ("jitter", "obs_age", "inference", "latency"):
            v = s[key]
            lines.append(f"{key:14s}{v['mean_ms']:10.3f}{v['p50_ms']:10.3f}{v['p99_ms']:10.3f}{v['max_ms']:10.3f}")
        return "\n".join(lines)
