"""Apply a profile to a world at the times it says (startup, reset, interval).

:class:`RandomizationRunner` builds one randomizer per entry (failing at construction
for unknown targets), then:

* ``startup`` entries are drawn once (at the first reset) and re-applied after every
  restore, so they hold for the env's lifetime;
* ``reset`` entries are drawn at every :meth:`reset`: the world is first restored to its
  nominal values, then startup and reset draws are applied (``com_offset`` first);
* ``interval`` entries fire every ``Interval.draw_period`` control steps (:meth:`step`),
  their period re-drawn after each event; their effect lasts until the next reset.

All draws come from the generator passed in (the env's ``np_random``), so a seeded reset
reproduces the world exactly.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from sim2real.errors import EnvError, ProfileError
from sim2real.profiles import Profile, Sample
from sim2real.sim.randomizers import Randomizer, make_randomizer
from sim2real.sim.world import PhysicsWorld


class RandomizationRunner:
    """Drives the randomizers of ``profile`` on ``world``.

    Attributes:
        applied: ``{entry: {target: value}}`` of the current episode (``info["randomization"]``).
    """

    def __init__(self, world: PhysicsWorld, profile: Profile) -> None:
        self.world = world
        self.profile = profile
        self.randomizers: dict[str, Randomizer] = {}
        for name, entry in profile.entries.items():
            try:
                self.randomizers[name] = make_randomizer(world, entry)
            except ProfileError as exc:
                src = str(profile.source) if profile.source else exc.file
                raise ProfileError(exc.detail, file=src, path=exc.key_path or ("params", name)) from None
        self.interval = [n for n, e in profile.entries.items() if e.when == "interval"]
        self.has_interval = bool(self.interval)
        self._startup: dict[str, Sample] | None = None
        self._timers: dict[str, int] = {}
        self.applied: dict[str, dict[str, Any]] = {}
        self.episodes = 0

    def _pinned_samples(self, pinned: Mapping[str, Any]) -> dict[str, Sample]:
        out = {}
        for name, value in pinned.items():
            entry = self.profile.entries.get(name)
            if entry is None:
                raise EnvError(f"options['params'] names entry {name!r}, which is not in profile "
                               f"{self.profile.name!r} (entries: {sorted(self.profile.entries)})")
            if entry.when == "interval":
                raise EnvError(f"options['params'] cannot pin interval entry {name!r}")
            out[name] = entry.make_sample(value, self.world.robot)
        return out

    def reset(self, rng: np.random.Generator, randomize: bool = True,
              pinned: Mapping[str, Any] | None = None, reseed: bool = False) -> dict[str, dict[str, Any]]:
        """Start an episode; return ``{entry: {target: value}}`` of what it runs with.

        Args:
            rng: the env's generator.
            randomize: ``False`` keeps the current world parameters (after the first episode).
            pinned: ``{entry: value}`` draws to use instead of sampling (see ``Entry.make_sample``).
            reseed: the generator was just seeded: draw the startup entries again, so a
                seeded reset gives the same world on a used env as on a fresh one.
        """
        world = self.world
        if not randomize and self.episodes > 0 and not pinned:
            world.pushes = [x for x in world.pushes if x.steady]  # a wind lasts as long as the world's parameters
            self._draw_timers(rng)
            self.episodes += 1
            return self.applied
        world.pushes.clear()
        if self._startup is None or reseed:
            self._startup = self.profile.sample(rng, world.robot, when="startup")
        samples = dict(self._startup)
        samples.update(self.profile.sample(rng, world.robot, when="reset"))
        if pinned:
            samples.update(self._pinned_samples(pinned))
        randomizers = self.randomizers
        ordered = sorted(samples.items(), key=lambda kv: randomizers[kv[0]].order)
        applied: dict[str, dict[str, Any]] = {}
        # one batch: every link's changeDynamics is sent once, with its final value, at the end
        with world.batch():
            first = [(n, s) for n, s in ordered if randomizers[n].order <= 0]
            for name, sample in first:  # com_offset: rebuilds the body before anything else is set
                applied[name] = randomizers[name].apply(sample, rng)
            if not any(randomizers[n].kind == "com_offset" for n, _ in first):
                world.set_com_offsets({})  # no-op unless a previous profile moved a COM
            world.restore_nominal()
            for name, sample in ordered:
                if randomizers[name].order > 0:
                    applied[name] = randomizers[name].apply(sample, rng)
        self.applied = applied
        self._draw_timers(rng)
        self.episodes += 1
        return applied

    def _draw_timers(self, rng: np.random.Generator) -> None:
        dt = self.world.control_dt
        self._timers = {n: self.profile.entries[n].interval.draw_period(rng, dt)  # type: ignore[union-attr]
                        for n in self.interval}

    def step(self, rng: np.random.Generator) -> None:
        """Advance interval timers by one control step; fire the entries that are due."""
        if not self.has_interval:
            return
        for name in self.interval:
            self._timers[name] -= 1
            if self._timers[name] <= 0:
                entry = self.profile.entries[name]
                sample = entry.sample(rng, self.world.robot)
                self.applied[name] = self.randomizers[name].apply(sample, rng)
                if self.randomizers[name].kind not in ("push", "wind"):
                    self.world.reset_control()
                self._timers[name] = entry.interval.draw_period(rng, self.world.control_dt)  # type: ignore[union-attr]
