"""Randomization profiles: what is randomized, how, and when.

A profile (YAML, see ``docs/profiles.md``) is loaded, resolved (``extends``) and
validated by :func:`load_profile`; every error is a :class:`~sim2real.errors.ProfileError`
naming the file, the key path and what was expected. :meth:`Profile.sample` draws every
due entry from a :class:`numpy.random.Generator`, reproducibly for a given seed.

Example::

    from sim2real.profiles import load_profile
    profile = load_profile("peng2018_arm", robot="kuka_iiwa")
    draws = profile.sample(np.random.default_rng(0))       # {entry: Sample}
    draws["link_mass"].values                               # (n_links, 1) scale factors
"""

from sim2real.profiles.distributions import DISTRIBUTIONS, Distribution
from sim2real.profiles.entry import Entry, Interval, Sample
from sim2real.profiles.kinds import OPERATIONS, PARAM_KINDS, WHENS, KindSpec
from sim2real.profiles.loader import Profile, find_profile, load_profile, profiles_dir, shipped_profiles

__all__ = [
    "DISTRIBUTIONS", "Distribution", "Entry", "Interval", "KindSpec", "OPERATIONS", "PARAM_KINDS", "Profile",
    "Sample", "WHENS", "find_profile", "load_profile", "profiles_dir", "shipped_profiles",
]
