"""benchmarks/online_id.py: the error curves and the RLS → μ̂ mapping the table is built from."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("online_id")


def _episode(estimates: np.ndarray, mu: np.ndarray) -> dict:
    return {"estimates": {"mu": estimates}, "mu": mu}


def test_error_curve_scores_against_the_mean_guess(bench) -> None:
    rng = np.random.default_rng(0)
    mus = rng.uniform(-1, 1, (20, 3))
    exact = [_episode(np.repeat(m[None], 10, 0), m) for m in mus]
    out = bench.error_curve(exact, "mu", lambda e: e["mu"], [0, 5, 9])
    assert out["error"] == [0.0, 0.0, 0.0]
    assert all(b > 0.3 for b in out["mean_guess"])
    # an estimator that always says the mean scores exactly the mean guess
    mean = mus.mean(0)
    lazy = [_episode(np.repeat(mean[None], 10, 0), m) for m in mus]
    out = bench.error_curve(lazy, "mu", lambda e: e["mu"], [3])
    assert out["error"][0] == pytest.approx(out["mean_guess"][0])
    # an episode that ended before step n is left out; none left -> NaN, not a crash
    out = bench.error_curve(exact, "mu", lambda e: e["mu"], [10])
    assert np.isnan(out["error"][0]) and np.isnan(out["mean_guess"][0])
    assert np.isnan(bench._ratio(1.0, 0.0))
    m, h = bench.ci95([0.2, 0.4, 0.6])
    assert m == pytest.approx(0.4) and h == pytest.approx(4.303 * 0.2 / np.sqrt(3), rel=1e-3)


def test_rls_estimate_becomes_the_mu_that_implies_it(bench) -> None:
    """The μ̂ shown to the universal policy implies the RLS thrust-to-mass estimate over the whole
    training range of the ratio (payload mass and kf both move), the other components at the middle;
    beyond it, the nearest corner."""
    from sim2real.sysid.rls import thrust_to_mass_from_mu
    from sim2real.sysid.upenv import make_up_env

    env = make_up_env(bench.TASK["env"], previous_action=False, profile=str(bench.TASK["profile"]))
    try:
        ctrl = bench.RLSUniversal(lambda x: x, env)
        obs, _ = env.reset(seed=3)
        ctrl.reset(obs[:-ctrl.k])
        nominal = 22.05
        for theta in (nominal * 0.7 / 1.5 * 1.01, 17.0, nominal, 27.0, nominal * 1.3 / 0.7 * 0.99):
            ctrl.rls.theta = theta
            mu_hat = ctrl.mu_hat()
            assert thrust_to_mass_from_mu(env, mu_hat) == pytest.approx(theta, rel=2e-3)
            assert np.all(np.delete(mu_hat, [ctrl.i_kf, ctrl.i_mass]) == 0.0)
            assert ctrl.estimate == {"theta": theta}
        ctrl.rls.theta = nominal  # near the middle the pair stays near the middle
        assert np.abs(ctrl.mu_hat()[[ctrl.i_mass, ctrl.i_kf]]).max() < 0.2
        ctrl.rls.theta = 60.0  # beyond the largest ratio: lightest payload, strongest rotors
        assert ctrl.mu_hat()[[ctrl.i_mass, ctrl.i_kf]] == pytest.approx([-1.0, 1.0], abs=1e-9)
    finally:
        env.close()
