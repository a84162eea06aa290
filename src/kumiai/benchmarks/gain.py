"""Does every member gain? The per-site table both quality benchmarks report.

Each model is scored on each site's own test rows (`per_site[model][site]`, a mean over
seeds of one metric: AUC for the heart data, PR-AUC for the factories). For every site the
table puts side by side the best the site trains alone (`local`), the pooled yardstick, and
the best consortium model of each kind (`federated`, `personalised`), naming which one;
`sites_gaining` (kumiai.domain.personalisation) counts the sites where the best consortium
model is at least as good as the local one.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from kumiai.domain.personalisation import sites_gaining

Scores = Mapping[str, Mapping[str, float | None]]  # model -> site -> metric


def _best(per_site: Scores, models: Sequence[str], site: str) -> tuple[float | None, str | None]:
    found = [(s, m) for m in models if (s := per_site[m].get(site)) is not None]
    return max(found) if found else (None, None)


def gain_report(
    per_site: Scores,
    *,
    local: Sequence[str],
    pooled: Sequence[str],
    federated: Sequence[str],
    personalised: Sequence[str],
) -> dict[str, Any]:
    """{"per_site": {site: the side-by-side row}, "sites": n, "sites_gaining": k}."""
    table: dict[str, dict[str, Any]] = {}
    alone: dict[str, float | None] = {}
    for site in sorted(per_site[local[0]]):
        alone[site], local_model = _best(per_site, local, site)
        fed, fed_model = _best(per_site, federated, site)
        own, own_model = _best(per_site, personalised, site)
        table[site] = {
            "local": alone[site],
            "local_model": local_model,
            "pooled": _best(per_site, pooled, site)[0],
            "federated": fed,
            "federated_model": fed_model,
            "personalised": own,
            "personalised_model": own_model,
            "gains": sites_gaining({site: alone[site]}, [{site: fed}, {site: own}]) == 1,
        }
    consortium = [per_site[m] for m in (*federated, *personalised)]
    return {
        "per_site": table,
        "sites": len(table),
        "sites_gaining": sites_gaining(alone, consortium),
    }


PERSONALISED = "+personalised"


def consortium_models(keys: Sequence[str], prefix: str = "fedavg") -> dict[str, list[str]]:
    """The consortium models among a benchmark's keys, by kind, without DP and with it.

    A key with "@" (e.g. `fedavg:mlp@eps1`) was trained under DP; one ending in
    "+personalised" was fine-tuned at the nodes. Example: ["fedavg", "fedavg+personalised",
    "fedavg@eps1", "fedavg@eps1+personalised", "pooled"] → federated ["fedavg"], personalised
    ["fedavg+personalised"], federated@eps1 ["fedavg@eps1"], personalised@eps1
    ["fedavg@eps1+personalised"].
    """
    ours = [k for k in keys if k.startswith(prefix)]
    kinds: dict[str, list[str]] = {}
    for private, suffix in ((False, ""), (True, "@eps1")):
        mine = [k for k in ours if ("@" in k) == private]
        kinds[f"federated{suffix}"] = [k for k in mine if not k.endswith(PERSONALISED)]
        kinds[f"personalised{suffix}"] = [k for k in mine if k.endswith(PERSONALISED)]
    return kinds
