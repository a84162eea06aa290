"""The per-site gain table of the quality benchmarks, on hand-made per-site scores."""

from kumiai.benchmarks.gain import consortium_models, gain_report

PER_SITE = {
    "local": {"a": 0.80, "b": 0.90, "c": 0.70},
    "local:mlp": {"a": 0.82, "b": 0.60, "c": 0.50},
    "pooled": {"a": 0.84, "b": 0.91, "c": 0.75},
    "fedavg": {"a": 0.85, "b": 0.88, "c": 0.69},
    "fedyogi": {"a": 0.81, "b": 0.89, "c": None},
    "fedavg+personalised": {"a": 0.70, "b": 0.90, "c": 0.68},
}


def test_each_site_is_compared_with_its_best_local_model() -> None:
    report = gain_report(
        PER_SITE,
        local=["local", "local:mlp"],
        pooled=["pooled"],
        federated=["fedavg", "fedyogi"],
        personalised=["fedavg+personalised"],
    )
    assert report["sites"] == 3
    # a: federated 0.85 ≥ local:mlp 0.82; b: personalised 0.90 ties local 0.90; c: 0.69 < 0.70.
    assert report["sites_gaining"] == 2
    assert report["per_site"]["a"] == {
        "local": 0.82,
        "local_model": "local:mlp",
        "pooled": 0.84,
        "federated": 0.85,
        "federated_model": "fedavg",
        "personalised": 0.70,
        "personalised_model": "fedavg+personalised",
        "gains": True,
    }
    assert report["per_site"]["b"]["gains"] is True
    assert report["per_site"]["c"]["federated"] == 0.69  # fedyogi's None is skipped
    assert report["per_site"]["c"]["gains"] is False


def test_without_personalised_models_only_federated_ones_count() -> None:
    report = gain_report(
        PER_SITE, local=["local"], pooled=["pooled"], federated=["fedavg"], personalised=[]
    )
    assert report["sites_gaining"] == 1  # only a
    assert report["per_site"]["b"]["personalised"] is None
    assert report["per_site"]["b"]["personalised_model"] is None


def test_consortium_models_are_sorted_by_kind_and_privacy() -> None:
    keys = [
        "fedavg",
        "fedavg:mlp+personalised",
        "fedavg@eps1",
        "fedavg:mlp@eps1+personalised",
        "local",
        "pooled:mlp",
    ]
    assert consortium_models(keys) == {
        "federated": ["fedavg"],
        "personalised": ["fedavg:mlp+personalised"],
        "federated@eps1": ["fedavg@eps1"],
        "personalised@eps1": ["fedavg:mlp@eps1+personalised"],
    }
