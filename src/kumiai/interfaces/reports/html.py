"""The report as ONE self-contained HTML file: inline CSS, inline SVG, nothing fetched.

A Content-Security-Policy forbids every request and every script, so the file reads the
same offline in a hospital as anywhere. Every user string (titles, purposes, notes) is
escaped. Each figure is a `<span class="figure">` whose `data-figure`, `data-value` and
`data-cites` repeat the JSON report, and each citation links to its row in the appendix
(`#entry-SEQ`: seq, kind, actor, time, leaf hash).
"""

import json
from collections.abc import Iterable
from html import escape
from typing import Any

from kumiai.domain.bookkeeping import CATEGORIES
from kumiai.domain.report import MILESTONE_STATES
from kumiai.interfaces.reports.charts import Row, Segment, bar_chart
from kumiai.interfaces.reports.format import value_text

POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
STYLE = " ".join(
    (
        "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;",
        "color:#1b1f24;padding:0 1em}",
        "h1{font-size:1.6em;margin-bottom:.2em}",
        "h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}",
        "h3{margin-top:1.6em}h4{margin:1em 0 .3em}",
        "table{border-collapse:collapse;margin:.4em 0 1em}",
        "th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}",
        "th{background:#f6f8fa}td.n{text-align:right;white-space:nowrap}",
        ".figure .v{font-variant-numeric:tabular-nums}",
        "sup.cites{font-size:.7em;margin-left:2px}sup.cites a{color:#57606a;margin-left:2px}",
        ".verified{background:#dafbe1;border:1px solid #4ac26b;padding:.6em 1em;border-radius:6px}",
        ".status-late{color:#cf222e;font-weight:600}",
        ".status-accepted{color:#1a7f37;font-weight:600}",
        ".muted{color:#57606a}code{font-size:.9em;word-break:break-all}",
        "figure.chart{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}",
        "svg .label,svg .amount{font-size:12px;fill:#1b1f24}svg .axis{stroke:#8c959f}",
        ".bar{fill:#0969da}.allocated{fill:#8c959f}.personnel{fill:#0969da}",
        ".compute{fill:#8250df}.data{fill:#1a7f37}.equipment{fill:#bf8700}.other{fill:#cf222e}",
        ".epsilon{fill:#bc4c00}.share{fill:#1a7f37}.share-negative{fill:#cf222e}",
        "tr:target{background:#fff8c5}",
    )
)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _html_id(name: str) -> str:
    """A figure id as an HTML id: letters, digits and '-' kept, anything else as _hex."""
    return "fig-" + "".join(
        c if c.isascii() and (c.isalnum() or c == "-") else f"_{ord(c):x}" for c in name
    )


def cites(seqs: Iterable[int]) -> str:
    links = " ".join(f'<a href="#entry-{int(s)}">{int(s)}</a>' for s in seqs)
    return f'<sup class="cites">{links}</sup>' if links else ""


def fig(f: dict[str, Any] | None) -> str:
    if f is None:
        return '<span class="muted">—</span>'
    return (
        f'<span class="figure" id="{_html_id(f["id"])}" data-figure="{_e(f["id"])}" '
        f'data-value="{_e(json.dumps(f["value"]))}" data-unit="{_e(f["unit"])}" '
        f'data-cites="{" ".join(str(int(s)) for s in f["cites"])}">'
        f'<span class="v">{_e(value_text(f))}</span>{cites(f["cites"])}</span>'
    )


def _table(
    head: Iterable[str], rows: Iterable[Iterable[str]], numeric: tuple[int, ...] = ()
) -> str:
    """Cells are HTML already (escaped or figures); `numeric` columns align right."""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        return '<p class="muted">None recorded.</p>'
    return f"<table><tr>{''.join(f'<th>{_e(h)}</th>' for h in head)}</tr>{body}</table>"


def _charts(doc: dict[str, Any]) -> str:
    projects = [p for t in doc["themes"] for p in t["projects"]]
    budget_rows = []
    for p in projects:
        budget = p["budget"]
        if budget["allocated"]["value"] or budget["actual"]["value"]:
            budget_rows.append(
                Row(f"{p['project']} allocated", [Segment(budget["allocated"], "allocated")])
            )
            budget_rows.append(
                Row(
                    f"{p['project']} actual",
                    [Segment(budget["by_category"][c], c, c) for c in CATEGORIES],
                )
            )
    parts = [
        bar_chart(
            "Budget (allocated) against actual spend by category, yen",
            budget_rows,
            "No funds have been allocated or spent yet.",
        ),
        bar_chart(
            "ε spent per dataset (record-level, all projects)",
            [Row(e["dataset"], [Segment(e["epsilon"], "epsilon")]) for e in doc["epsilon"]],
            "No dataset has spent any ε yet.",
        ),
    ]
    for p in projects:
        for model in p["models"]:
            contributions = model["contributions"]
            if contributions is None:
                continue
            rows = [
                Row(member, [Segment(share, "share" if share["value"] >= 0 else "share-negative")])
                for member, share in contributions["shares"].items()
            ]
            parts.append(
                bar_chart(
                    f"Contribution shares to {model['model']} ({contributions['method']} Shapley, "
                    f"{contributions['metric']})",
                    rows,
                    "No shares.",
                )
            )
    return "".join(parts)


def _funds(funds: dict[str, Any]) -> str:
    rows = [
        ["received", fig(funds["received"])],
        *[[f"— of which {kind}", fig(f)] for kind, f in funds["by_kind"].items()],
        ["allocated to projects", fig(funds["allocated"])],
        ["not yet allocated", fig(funds["unallocated"])],
        ["spent by projects", fig(funds["spent"])],
    ]
    html = "<h2>Funds</h2>" + _table(["funds", "yen"], ([_e(a), b] for a, b in rows), (1,))
    if "sources" in funds:
        html += "<h4>Sources (board)</h4>" + _table(
            ["source", "kind", "from", "yen", "note", "entry"],
            (
                [
                    _e(s["source"]),
                    _e(s["kind"]),
                    _e(s["from"]),
                    _e(f"¥{s['amount_yen']:,}"),
                    _e(s["note"]),
                    cites(s["cites"]),
                ]
                for s in funds["sources"]
            ),
            (3,),
        )
    return html


def _milestones(project: dict[str, Any]) -> str:
    counts = project["milestone_counts"]
    summary = ", ".join(f"{_e(state)}: {fig(counts[state])}" for state in MILESTONE_STATES)
    if not project["milestones"]:
        return f"<h4>Milestones</h4><p>None set. {summary}</p>"
    rows = []
    for m in project["milestones"]:
        status = f'<span class="status-{_e(m["status"])}">{_e(m["status"])}</span>'
        if m["accepted_on"]:
            status += f" on {_e(m['accepted_on'])} by {_e(m['accepted_by'])}"
            if m["accepted_late"]:
                status += " (after its due day)"
        if m["rejected_by"]:
            status += f"; rejected by {_e(', '.join(m['rejected_by']))}"
        evidence = "<br>".join(
            _e(
                " ".join(
                    str(v)
                    for v in (i.get("kind"), i.get("ref"), i.get("name"), i.get("sha256"))
                    if v
                )
            )
            for i in m["evidence"]
        )
        rows.append(
            [
                _e(m["milestone"]),
                _e(m["title"]),
                _e(m["due"] or ""),
                status,
                evidence,
                cites(m["cites"]),
            ]
        )
    table = _table(["milestone", "title", "due", "status", "evidence", "entries"], rows)
    return f"<h4>Milestones</h4><p>{summary}</p>{table}"


def _budget(project: dict[str, Any]) -> str:
    budget = project["budget"]
    rows = [[_e(c), fig(budget["by_category"][c])] for c in CATEGORIES]
    rows += [
        ["<b>actual</b>", fig(budget["actual"])],
        ["<b>allocated</b>", fig(budget["allocated"])],
        ["<b>remaining</b>", fig(budget["remaining"])],
    ]
    html = "<h4>Budget against actual</h4>" + _table(["category", "yen"], rows, (1,))
    if "items" in budget:
        html += _table(
            ["category", "yen", "spent on", "description", "entry"],
            (
                [
                    _e(i["category"]),
                    _e(f"¥{i['amount_yen']:,}"),
                    _e(i["spent_on"]),
                    _e(i["description"]),
                    cites(i["cites"]),
                ]
                for i in budget["items"]
            ),
            (1,),
        )
    compute = project["compute"]
    html += (
        f"<p>Compute: {fig(compute['used_site_rounds'])} site-rounds used of a quota of "
        f"{fig(compute['quota_site_rounds'])}.</p>"
    )
    return html


def _models(project: dict[str, Any]) -> str:
    if not project["models"]:
        return ""
    html = "<h4>Models</h4>"
    for model in project["models"]:
        metrics = ", ".join(f"{_e(k)} {fig(v)}" for k, v in model["metrics"].items())
        html += f"<p><b>{_e(model['model'])}</b>{cites(model['cites'])}: {metrics}</p>"
        contributions = model["contributions"]
        if contributions:
            html += _table(
                ["member", f"share of {contributions['metric']}"],
                ([_e(member), fig(share)] for member, share in contributions["shares"].items()),
                (1,),
            )
    return html


def _licences(licences: list[dict[str, Any]], heading: str) -> str:
    if not licences:
        return ""
    html = f"<h4>{_e(heading)}</h4>"
    for lic in licences:
        terms = lic["terms"]
        rate = terms.get("royalty_rate_bp")
        html += (
            f"<p><b>{_e(lic['licence'])}</b>{cites(lic['cites'])}: {_e(lic['model'])} to "
            f"{_e(lic['licensee'])} (motion {_e(lic['motion'])}); field of use "
            f"{_e(terms.get('field_of_use'))}, territory {_e(terms.get('territory'))}, "
            f"{_e(terms.get('starts'))} to {_e(terms.get('ends'))}, royalty "
            f"{_e(rate)} bp; restrictions: {_e('; '.join(terms['restrictions']) or 'none')}</p>"
        )
        html += _table(
            ["licence's money", "yen"],
            [
                ["revenue reported", fig(lic["revenue_yen"])],
                ["royalties", fig(lic["royalty_yen"])],
                ["— to the association", fig(lic["association_yen"])],
                ["— to members", fig(lic["paid_to_members_yen"])],
            ],
            (1,),
        )
        # Each member's payout is the board's to read: the investor's report has none, so
        # its table has no payouts column rather than an empty one.
        with_payouts = any("payouts" in period for period in lic["periods"])
        rows = []
        for period in lic["periods"]:
            row = [
                _e(period["period"]),
                fig(period["revenue_yen"]),
                fig(period.get("royalty_yen")),
                fig(period.get("association_yen")),
                _e(period.get("rule", "")) if period["distributed"] else "not yet distributed",
            ]
            if with_payouts:
                payouts = period.get("payouts", {}).items()
                row.append(", ".join(f"{_e(m)} {fig(y)}" for m, y in payouts))
            rows.append(row)
        head = ["period", "revenue", "royalty", "association", "rule"]
        html += _table(head + ["payouts"] * with_payouts, rows, (1, 2, 3))
    return html


def _epsilon(rows: list[dict[str, Any]], heading: str) -> str:
    if not rows:
        return ""
    return f"<h4>{_e(heading)}</h4>" + _table(
        ["dataset", "ε"], ([_e(r["dataset"]), fig(r["epsilon"])] for r in rows), (1,)
    )


def _project(p: dict[str, Any]) -> str:
    return (
        f'<section class="project" id="project-{_e(p["project"])}"><h3>{_e(p["title"])} '
        f'<span class="muted">({_e(p["project"])}, {_e(p["status"])})</span>'
        f"{cites(p['cites'])}</h3>"
        f'<p>{_e(p["purpose"])}</p><p class="muted">Members: {_e(", ".join(p["members"]))}</p>'
        + _milestones(p)
        + _budget(p)
        + _models(p)
        + _licences(p["licences"], "Licences, revenue and royalties")
        + _epsilon(p["epsilon"], "ε spent in this project")
        + "</section>"
    )


def _themes(doc: dict[str, Any]) -> str:
    html = ""
    for theme in doc["themes"]:
        rank = f"priority {theme['rank']} · " if theme["rank"] else ""
        html += (
            f'<section class="theme"><h2>{_e(theme["title"])}{cites(theme["cites"])}</h2>'
            f'<p class="muted">{_e(rank)}{_e(theme["description"])}</p>'
            f"<p>Allocated {fig(theme['allocated_yen'])}, spent {fig(theme['actual_yen'])}.</p>"
            + "".join(_project(p) for p in theme["projects"])
            + "</section>"
        )
    return html


def _spinouts(doc: dict[str, Any]) -> str:
    if not doc["spinouts"]:
        return ""
    return "<h2>Spin-outs</h2>" + _table(
        ["spin-out", "founders", "theme", "project", "motion", "entry"],
        (
            [
                _e(s["spinout"]),
                _e(", ".join(s["founders"])),
                _e(s["theme"] or ""),
                _e(s["project"] or ""),
                _e(s["motion"]),
                cites(s["cites"]),
            ]
            for s in doc["spinouts"]
        ),
    )


def _board(board: dict[str, Any]) -> str:
    charter = board["charter"]
    head = (
        f"<p>Charter version {charter['version']}; seats: {_e(', '.join(charter['seats']))}. "
        if charter
        else "<p>No charter is adopted. "
    ) + f"Open motions: {board['open']}.</p>"
    rows = []
    for m in board["motions"]:
        t = m["tally"]
        votes = ", ".join(f"{_e(k)} {_e(v)}" for k, v in m["votes"].items())
        rows.append(
            [
                _e(m["motion"]),
                _e(m["decision"]),
                f"<code>{_e(m['payload'])}</code>",
                _e(m["proposer"]),
                _e(m["status"]),
                _e(m["closes_at"]),
                votes,
                _e(
                    f"{t['yes']} yes, {t['no']} no, {t['abstain']} abstain of "
                    f"{t['eligible']}; {t['reason']}"
                ),
                cites(m["cites"]),
            ]
        )
    return (
        "<h2>The board</h2>"
        + head
        + _table(
            [
                "motion",
                "decision",
                "payload",
                "proposer",
                "status",
                "closes",
                "votes",
                "tally (so far, if open)",
                "entries",
            ],
            rows,
        )
    )


def _member(section: dict[str, Any]) -> str:
    html = f"<h2>For {_e(section['member'])}{cites(section['cites'])}</h2>"
    html += _epsilon(section["datasets"], "ε spent on your datasets")
    if section["contributions"]:
        html += "<h4>Your contribution shares</h4>" + _table(
            ["model", "share"],
            ([_e(c["model"]), fig(c["share"])] for c in section["contributions"]),
            (1,),
        )
    rows = [
        [_e(lic["licence"]), _e(p["period"]), fig(p["payout_yen"])]
        for lic in section["payouts"]
        for p in lic["periods"]
    ]
    html += "<h4>Your royalties</h4>" + (
        _table(["licence", "period", "yen"], rows, (2,)) if rows else "<p>None yet.</p>"
    )
    return html + f"<p>Total paid to you: {fig(section['payouts_total_yen'])}</p>"


def _appendix(doc: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr id="entry-{int(a["seq"])}" data-seq="{int(a["seq"])}">'
        f'<td class="n">{int(a["seq"])}</td>'
        f"<td>{_e(a['kind'])}</td><td>{_e(a['actor'])}</td><td>{_e(a['time'])}</td>"
        f"<td><code>{_e(a['leaf_hash'])}</code></td></tr>"
        for a in doc["appendix"]
    )
    return (
        '<h2 id="appendix">Appendix: the ledger entries cited</h2>'
        "<p>Each figure above cites these entries by sequence number. Check them against the "
        "export: <code>kumiai ledger verify ledger.jsonl</code>, then <code>kumiai ledger "
        "show</code> or the export itself; the leaf hash is SHA-256(0x00 ‖ leaf).</p>"
        '<table id="cited-entries"><tr><th>seq</th><th>kind</th><th>actor</th><th>time (UTC)</th>'
        f"<th>leaf hash</th></tr>{rows}</table>"
    )


def _who(doc: dict[str, Any]) -> str:
    return f"for {doc['audience']}" + (f" {doc['member']}" if doc["member"] else "")


def render_body(doc: dict[str, Any]) -> str:
    """The report's content without its page: what the dashboard's investor page shows."""
    ledger = doc["ledger"]
    who = _who(doc)
    witnesses = ", ".join(ledger["witnesses"]) or "no member yet"
    body = (
        f'<h1>kumiai report {_e(who)}</h1><p class="muted">As of {_e(doc["date"])}.</p>'
        f'<p class="verified" id="ledger" data-root="{_e(ledger["root"])}" '
        f'data-size="{int(ledger["size"])}">'
        f"Computed from the verified ledger: {int(ledger['size'])} entries, every signature, the "
        f"tree and every head checked; root <code>{_e(ledger['root'])}</code>, head signed "
        f"{_e(ledger['head_time'])}, cosigned by {_e(witnesses)}.</p>"
        + _funds(doc["funds"])
        + "<h2>Charts</h2>"
        + _charts(doc)
        + _themes(doc)
        + _epsilon(doc["epsilon"], "ε spent per dataset, all projects")
        + _spinouts(doc)
        + _licences(doc["other_licences"], "Licences of models outside any project")
        + (_board(doc["board"]) if "board" in doc else "")
        + (_member(doc["for_member"]) if "for_member" in doc else "")
        + _appendix(doc)
    )
    return body


def render_html(doc: dict[str, Any]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>kumiai report {_e(_who(doc))} {_e(doc['date'])}</title><style>{STYLE}</style>"
        f"</head><body>{render_body(doc)}</body></html>\n"
    )
