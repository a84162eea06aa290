"""Coalition retraining: the properties hold on models really trained by each coalition."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from kumiai.benchmarks.contribution import SETTINGS, _part
from kumiai.domain.contribution import exact_shapley
from kumiai.domain.training import TrainingSettings
from kumiai.services.contribution import coalition_utility, feature_plan
from kumiai.services.demo import build_demo_consortium


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = TrainingSettings(**{**SETTINGS.__dict__, "rounds": 20})
    home = Path(tmp_path_factory.mktemp("contribution")) / "c"
    demo = build_demo_consortium(home, refusing=None, epsilon_cap=None, lifetime_epsilon=None)
    return settings, {d: s.node.split(d, settings) for d, s in demo.sites.items()}


def test_shares_of_retrained_coalitions(sites) -> None:  # type: ignore[no-untyped-def]
    settings, parts = sites
    members = {}
    for dataset, site in sorted(parts.items())[:2]:
        rows = np.arange(len(site.train_labels))
        members[dataset] = site
        members[f"copy-of-{dataset}"] = _part(site, f"copy-of-{dataset}", rows)
    big = max(parts, key=lambda d: len(parts[d].train_labels))
    members["noise"] = _part(parts[big], "noise", np.arange(len(parts[big].train_labels)), 1)
    v = coalition_utility(members, list(parts.values()), settings, feature_plan(parts))
    result = exact_shapley(members, v)
    # Efficiency.
    assert sum(result.shares.values()) == pytest.approx(result.grand - result.empty)
    assert result.empty == pytest.approx(0.5)  # the all-zero model ranks nothing
    # Exact equals the definition over every ordering of retrained coalitions.
    names = sorted(members)
    brute = dict.fromkeys(names, 0.0)
    orders = list(itertools.permutations(names))
    for order in orders:
        for i, name in enumerate(order):
            brute[name] += (v(frozenset(order[: i + 1])) - v(frozenset(order[:i]))) / len(orders)
    assert result.shares == pytest.approx(brute, abs=1e-9)
    # Symmetry: identical rows, equal shares (up to each member's own SGD shuffle).
    real = [d for d in members if d != "noise" and not d.startswith("copy-of-")]
    for dataset in real:
        assert result.shares[f"copy-of-{dataset}"] == pytest.approx(
            result.shares[dataset], abs=0.01
        )
    # Null player: shuffled labels earn far less than any real member.
    assert result.shares["noise"] < 0.5 * min(result.shares[d] for d in real)


def test_the_grand_coalition_is_deterministic(sites) -> None:  # type: ignore[no-untyped-def]
    settings, parts = sites
    plan = feature_plan(parts)
    one = coalition_utility(parts, list(parts.values()), settings, plan)(frozenset(parts))
    two = coalition_utility(parts, list(parts.values()), settings, plan)(frozenset(parts))
    assert one == two
