"""Reference models for comparison: each site alone, and all rows pooled.

Local-only training is what each node could do by itself. The pooled model is a yardstick
that only a single-machine demo or benchmark can build; a real consortium cannot pool.
Both are scored with the same aggregate metrics as the federated model.
"""

from dataclasses import dataclass

import numpy as np

from kumiai.adapters.models.families import model_for
from kumiai.domain.metrics import SiteScore, score_site
from kumiai.domain.preprocessing import merge_summaries, summarise
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import NodePort, SiteSplit


@dataclass(frozen=True)
class Site:
    node: NodePort
    dataset: str


def _split(site: Site, settings: TrainingSettings) -> SiteSplit:
    return site.node.split(site.dataset, settings)


def _fit_and_score(
    train: list[SiteSplit], test: list[SiteSplit], settings: TrainingSettings
) -> dict[str, SiteScore]:
    summaries = {p.dataset: summarise(p.train, p.schema, p.train_labels) for p in train}
    plan = merge_summaries(summaries)
    X = np.vstack([plan.transform(p.train) for p in train])
    y = np.concatenate([plan.encode_labels(p.train_labels, p.dataset) for p in train])
    model = model_for(settings, X.shape[1], len(plan.classes))
    model.fit(X, y)
    return {
        p.dataset: score_site(
            model.predict_proba(plan.transform(p.test)),
            plan.encode_labels(p.test_labels, p.dataset),
        )
        for p in test
    }


def local_only(sites: list[Site], settings: TrainingSettings) -> dict[str, SiteScore]:
    """Each site trains on its own training rows and is scored on its own test rows."""
    scores: dict[str, SiteScore] = {}
    for site in sites:
        part = _split(site, settings)
        scores.update(_fit_and_score([part], [part], settings))
    return scores


def pooled(sites: list[Site], settings: TrainingSettings) -> dict[str, SiteScore]:
    """One model on all sites' training rows together, scored on each site's test rows."""
    parts = [_split(site, settings) for site in sites]
    return _fit_and_score(parts, parts, settings)


def single_site(
    site: Site, evaluate_on: list[Site], settings: TrainingSettings
) -> dict[str, SiteScore]:
    """One site's own model, scored on every listed site's test rows (FLamby's 'local' row)."""
    return _fit_and_score(
        [_split(site, settings)], [_split(s, settings) for s in evaluate_on], settings
    )
