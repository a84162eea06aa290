"""The model card: what a released model is for, what it was trained on, how it behaves.

Pure Python over records (no NumPy: `kumiai model card` only reads and must start fast).
Its figures come from three places, each cited on the card:

- the model version (purpose, lineage, settings, per-site metrics of the last round);
- the agreements and the privacy-spend records of the job (ε spent and by whom);
- the latest `model.audited` ledger entry: the aggregates each node measured on its own
  rows (kumiai.domain.model_audit), summed across sites here.

From a 10-bin histogram of the positive-class probability by label this module derives
calibration (a reliability table: in each bin, the observed rate of positives against the
bin's midpoint), a coarse AUC, and accuracy, TPR and FPR at 0.5 (the bin edge at 0.5 is
exact). Example: positives [0,0,0,0,0,0,0,2,3,5] and negatives [5,3,2,0,0,0,0,0,0,0] give
accuracy 1, TPR 1, FPR 0 and AUC 1; the 0.9–1.0 bin holds 5 rows, all positive, observed
1.00 against predicted 0.95.
"""

from __future__ import annotations

from typing import Any

AUDITED = "model.audited"  # the ledger entry that holds the nodes' figures
BINS = 10
Histogram = dict[str, list[int]]  # {"positives": [10 counts], "negatives": [10 counts]}


def add(histograms: list[Histogram]) -> Histogram:
    """The histogram of several sites' test rows together, as if pooled."""
    total: Histogram = {"positives": [0] * BINS, "negatives": [0] * BINS}
    for h in histograms:
        for key in total:
            total[key] = [a + b for a, b in zip(total[key], h[key], strict=True)]
    return total


def figures(h: Histogram) -> dict[str, float | int | None]:
    """Rows, accuracy, TPR and FPR at 0.5, a coarse AUC and rates, from one histogram."""
    pos, neg = h["positives"], h["negatives"]
    n_pos, n_neg = sum(pos), sum(neg)
    tp, fp = sum(pos[BINS // 2 :]), sum(neg[BINS // 2 :])
    rows = n_pos + n_neg
    below, wins = 0, 0.0
    for p, n in zip(pos, neg, strict=True):  # Mann-Whitney: ties within a bin count half
        wins += p * (below + 0.5 * n)
        below += n
    return {
        "rows": rows,
        "accuracy": (tp + n_neg - fp) / rows if rows else None,
        "auc": wins / (n_pos * n_neg) if n_pos and n_neg else None,
        "tpr": tp / n_pos if n_pos else None,
        "fpr": fp / n_neg if n_neg else None,
        "positive_rate": n_pos / rows if rows else None,
        "predicted_positive_rate": (tp + fp) / rows if rows else None,
    }


def reliability(h: Histogram) -> dict[str, Any]:
    """The reliability table and the expected calibration error (bin midpoints as predicted)."""
    rows, error, total = [], 0.0, sum(h["positives"]) + sum(h["negatives"])
    for b, (p, n) in enumerate(zip(h["positives"], h["negatives"], strict=True)):
        count = p + n
        predicted = (b + 0.5) / BINS
        observed = p / count if count else None
        rows.append(
            {
                "from": b / BINS,
                "to": (b + 1) / BINS,
                "rows": count,
                "predicted": predicted,
                "observed": observed,
            }
        )
        if observed is not None:
            error += count / total * abs(observed - predicted)
    return {"table": rows, "expected_calibration_error": error if total else None}


def gap(values: dict[str, float | int | None]) -> dict[str, Any] | None:
    """The spread of one figure across sites or groups: lowest, highest and the gap."""
    known = {k: float(v) for k, v in values.items() if v is not None}
    if len(known) < 2:
        return None
    low, high = min(known, key=known.__getitem__), max(known, key=known.__getitem__)
    return {"lowest": low, "highest": high, "gap": known[high] - known[low]}


def weighted_importance(sites: dict[str, tuple[int, dict[str, float]]]) -> list[list[Any]]:
    """The nodes' permutation importance, each site weighted by its test rows, largest first.

    Example: a with 30 rows says age 0.2; b with 10 rows says age 0.6: (30·0.2 + 10·0.6)/40
    = 0.3.
    """
    total = sum(rows for rows, _ in sites.values())
    combined: dict[str, float] = {}
    for rows, rises in sites.values():
        for column, rise in rises.items():
            combined[column] = combined.get(column, 0.0) + rise * rows / total
    return [[c, v] for c, v in sorted(combined.items(), key=lambda item: (-abs(item[1]), item[0]))]


def audit_verdict(lower_bound: float, accounted: float | None) -> str:
    """Whether the empirical bound stays within the accounted ε.

    Under DP a bound above the accounted ε is a bug (in the accounting or the DP-SGD), shown
    as such; without DP there is no guarantee to break, and a bound above 0 measures leakage.
    """
    if accounted is None:
        return "no DP: leaks measurably" if lower_bound > 0 else "no DP: no leak measured"
    return "holds" if lower_bound <= accounted else "VIOLATED: bound exceeds accounted ε"


def fairness(sites: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per level of the attribute across sites, and the gaps between levels."""
    by_level: dict[str, list[Histogram]] = {}
    withheld = {}
    for site, groups in sorted(sites.items()):
        if "withheld" in groups:
            withheld[site] = groups["withheld"]
            continue
        for level, h in groups.items():
            by_level.setdefault(level, []).append(h)
    levels = {level: figures(add(hs)) for level, hs in sorted(by_level.items())}
    gaps = {
        name: gap({level: f[name] for level, f in levels.items()})
        for name in ("accuracy", "auc", "tpr", "fpr", "predicted_positive_rate")
    }
    return {"levels": levels, "gaps": gaps, "withheld": withheld}


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: what a reader needs, in the order they need it."""
    lines = [f"# Model card: {card['model']}", ""]
    use = card["intended_use"]
    lines += [
        "## Intended use",
        "",
        f"{use['purpose']} (project `{card['project']}`). {use['limits']}",
        "",
        "## Training",
        "",
        f"- released {card['released_at']} from job `{card['job']}`: {card['training']['family']}"
        f" model, {card['training']['strategy']}, {card['training']['rounds']} rounds",
        f"- differential privacy: {card['training']['privacy']}",
        f"- secure aggregation: {'on' if card['training']['secure_aggregation'] else 'off'}",
        "",
        "## Data sites and their agreements",
        "",
        "| dataset | steward | agreement | kinds | ε cap | statistics | min cohort | expires |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in card["data"]:
        cap = "—" if s["epsilon_cap"] is None else f"{s['epsilon_cap']:g}"
        revoked = " (revoked)" if s["revoked"] else ""
        lines.append(
            f"| {s['dataset']} | {s['steward']} | {s['agreement']}{revoked} | "
            f"{', '.join(s['job_kinds'])} | {cap} | {s['aggregate_statistics']} | "
            f"{s['min_cohort']} | {s['expires_at']} |"
        )
    for dataset, reason in sorted(card["refused"].items()):
        lines.append(f"\n{dataset} did not take part: {reason}")
    lines += [
        "",
        "## Metrics per site",
        "",
        "| site | test rows | accuracy | AUC |",
        "|---|---|---|---|",
    ]
    rows = sorted(card["metrics"]["sites"].items())
    for site, m in [*rows, ("**all sites**", card["metrics"]["overall"])]:
        lines.append(
            f"| {site} | {m.get('examples')} | {_n(m.get('accuracy'))} | {_n(m.get('auc'))} |"
        )
    lines += ["", _gaps_line("between sites", card["metrics"]["gaps"])]
    audit = card["audit"]
    if audit is None:
        lines += ["", "## Node-measured figures", "", card["audit_missing"]]
    else:
        lines += _audited(card, audit)
    lines += ["", "## Privacy: ε spent and by whom", ""]
    if not card["privacy"]:
        lines.append("No ε was spent: the model was trained without differential privacy.")
    else:
        lines += ["| dataset | member | ε spent | δ | level |", "|---|---|---|---|---|"]
        for p in card["privacy"]:
            lines.append(
                f"| {p['dataset']} | {p['member']} | {p['epsilon']:.3f} | {p['delta']:.2g} | "
                f"{p['level']} |"
            )
    for c in card["privacy_charged_after"]:
        lines.append(
            f"\nAfter release, {c['member']} paid ε {c['epsilon']:.3f} more on {c['dataset']} "
            f"for {c['for']} (ledger entry {c['entry']})."
        )
    return "\n".join(lines) + "\n"


def _audited(card: dict[str, Any], audit: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Node-measured figures",
        "",
        f"Measured by each node on its own rows (ledger entry {audit['entry']}, "
        f"{audit['at']}); only aggregates left the nodes.",
    ]
    for dataset, reason in sorted(audit["refused"].items()):
        lines.append(f"\n{dataset} did not audit: {reason}")
    calibration = audit["calibration"]
    if calibration is not None:
        ece = calibration["expected_calibration_error"]
        lines += [
            "",
            "## Calibration",
            "",
            f"Expected calibration error {_n(ece)}.",
            "",
            "| predicted | rows | observed |",
            "|---|---|---|",
        ]
        for row in calibration["table"]:
            lines.append(
                f"| {row['from']:.1f}–{row['to']:.1f} | {row['rows']} | {_n(row['observed'])} |"
            )
    fair = audit.get("fairness")
    if fair is not None:
        lines += [
            "",
            f"## Across {fair['attribute']}",
            "",
            "| level | test rows | accuracy | AUC | TPR | FPR | flagged |",
            "|---|---|---|---|---|---|---|",
        ]
        for level, f in fair["levels"].items():
            lines.append(
                f"| {level} | {f['rows']} | {_n(f['accuracy'])} | {_n(f['auc'])} | "
                f"{_n(f['tpr'])} | {_n(f['fpr'])} | {_n(f['predicted_positive_rate'])} |"
            )
        lines += ["", _gaps_line(f"between levels of {fair['attribute']}", fair["gaps"])]
        for site, why in sorted(fair["withheld"].items()):
            lines.append(f"\n{site} kept its breakdown: {why}")
    importance = audit["importance"]
    lines += ["", "## Global feature importance", "", importance["method"], ""]
    lines += ["| feature | importance |", "|---|---|"]
    for name, value in importance["values"][:15]:
        lines.append(f"| {name} | {value:+.3f} |")
    lines += [
        "",
        "## Privacy audit: membership inference",
        "",
        "A loss-threshold attack at each node, its training rows against its test rows. The "
        "lower bound on ε holds with 95% confidence (Clopper–Pearson); it must never exceed "
        "the accounted ε.",
        "",
        "| site | attack AUC | members / non-members | ε lower bound | accounted ε | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, m in sorted(audit["membership"].items()):
        accounted = "—" if m["accounted_epsilon"] is None else f"{m['accounted_epsilon']:.3f}"
        lines.append(
            f"| {dataset} | {m['auc']:.3f} | {m['members']} / {m['non_members']} | "
            f"{m['epsilon_lower_bound']:.3f} | {accounted} | {m['verdict']} |"
        )
    return lines


def _gaps_line(where: str, gaps: dict[str, Any]) -> str:
    parts = [
        f"{name} {g['gap']:.3f} ({g['lowest']} lowest, {g['highest']} highest)"
        for name, g in gaps.items()
        if g is not None
    ]
    return f"Gaps {where}: " + ("; ".join(parts) if parts else "none to show") + "."


def _n(value: object) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
