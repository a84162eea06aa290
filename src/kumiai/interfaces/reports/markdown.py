"""The report as Markdown: the same figures as the HTML, in tables.

Each figure is followed by the entries it cites, as links to the appendix (`#entry-SEQ`).
User strings are escaped so that a title cannot open a link, a tag or a table cell.
"""

import re
from collections.abc import Iterable
from typing import Any

from kumiai.domain.bookkeeping import CATEGORIES
from kumiai.domain.report import MILESTONE_STATES
from kumiai.interfaces.reports.format import value_text

_SPECIAL = re.compile(r"([\\`*_\[\]<>|!#~])")


def md(text: object) -> str:
    """Plain text inside Markdown: no markup, no HTML, one line."""
    escaped = str(text).replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    return _SPECIAL.sub(r"\\\1", escaped)


def cites(seqs: Iterable[int]) -> str:
    links = ", ".join(f"[{int(s)}](#entry-{int(s)})" for s in seqs)
    return f" ⟨{links}⟩" if links else ""


def fig(f: dict[str, Any] | None) -> str:
    return "—" if f is None else f"{value_text(f)}{cites(f['cites'])}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "None recorded.\n"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _project(p: dict[str, Any]) -> str:
    counts = p["milestone_counts"]
    budget, compute = p["budget"], p["compute"]
    parts = [
        f"### {md(p['title'])} ({md(p['project'])}, {md(p['status'])}){cites(p['cites'])}\n",
        f"{md(p['purpose'])}\n\nMembers: {md(', '.join(p['members']))}\n",
        "#### Milestones\n",
        ", ".join(f"{s}: {fig(counts[s])}" for s in MILESTONE_STATES) + "\n",
        _table(
            ["milestone", "title", "due", "status", "entries"],
            [
                [
                    md(m["milestone"]),
                    md(m["title"]),
                    md(m["due"] or ""),
                    md(m["status"] + (" (after its due day)" if m["accepted_late"] else "")),
                    cites(m["cites"]),
                ]
                for m in p["milestones"]
            ],
        ),
        "#### Budget against actual\n",
        _table(
            ["category", "yen"],
            [[c, fig(budget["by_category"][c])] for c in CATEGORIES]
            + [
                ["**actual**", fig(budget["actual"])],
                ["**allocated**", fig(budget["allocated"])],
                ["**remaining**", fig(budget["remaining"])],
            ],
        ),
    ]
    if "items" in budget:
        parts.append(
            _table(
                ["category", "yen", "spent on", "description", "entry"],
                [
                    [
                        md(i["category"]),
                        f"¥{i['amount_yen']:,}",
                        md(i["spent_on"]),
                        md(i["description"]),
                        cites(i["cites"]),
                    ]
                    for i in budget["items"]
                ],
            )
        )
    parts.append(
        f"Compute: {fig(compute['used_site_rounds'])} site-rounds used of a quota of "
        f"{fig(compute['quota_site_rounds'])}.\n"
    )
    for model in p["models"]:
        metrics = ", ".join(f"{md(k)} {fig(v)}" for k, v in model["metrics"].items())
        parts.append(f"#### Model {md(model['model'])}{cites(model['cites'])}\n\n{metrics}\n")
        if model["contributions"]:
            c = model["contributions"]
            parts.append(
                _table(
                    ["member", f"share of {md(c['metric'])}"],
                    [[md(m), fig(s)] for m, s in c["shares"].items()],
                )
            )
    parts.append(_licences(p["licences"]))
    if p["epsilon"]:
        parts += ["#### ε spent in this project\n", _epsilon(p["epsilon"])]
    return "\n".join(parts)


def _licences(licences: list[dict[str, Any]]) -> str:
    parts = []
    for lic in licences:
        terms = lic["terms"]
        parts.append(
            f"#### Licence {md(lic['licence'])}{cites(lic['cites'])}\n\n"
            f"{md(lic['model'])} to {md(lic['licensee'])} (motion {md(lic['motion'])}); "
            "field of use "
            f"{md(terms.get('field_of_use'))}, territory {md(terms.get('territory'))}, "
            f"{md(terms.get('starts'))} to {md(terms.get('ends'))}, royalty "
            f"{md(terms.get('royalty_rate_bp'))} bp; restrictions: "
            f"{md('; '.join(terms['restrictions']) or 'none')}\n"
        )
        parts.append(
            _table(
                ["licence's money", "yen"],
                [
                    ["revenue reported", fig(lic["revenue_yen"])],
                    ["royalties", fig(lic["royalty_yen"])],
                    ["to the association", fig(lic["association_yen"])],
                    ["to members", fig(lic["paid_to_members_yen"])],
                ],
            )
        )
        parts.append(
            _table(
                ["period", "revenue", "royalty", "association", "payouts"],
                [
                    [
                        md(r["period"]),
                        fig(r["revenue_yen"]),
                        fig(r.get("royalty_yen")),
                        fig(r.get("association_yen")),
                        ", ".join(f"{md(m)} {fig(y)}" for m, y in r.get("payouts", {}).items()),
                    ]
                    for r in lic["periods"]
                ],
            )
        )
    return "\n".join(parts)


def _epsilon(rows: list[dict[str, Any]]) -> str:
    return _table(["dataset", "ε"], [[md(r["dataset"]), fig(r["epsilon"])] for r in rows])


def render_markdown(doc: dict[str, Any]) -> str:
    ledger, funds = doc["ledger"], doc["funds"]
    who = f"for {doc['audience']}" + (f" {doc['member']}" if doc["member"] else "")
    parts = [
        f"# kumiai report {md(who)}\n",
        f"As of {doc['date']}. Computed from the verified ledger: {ledger['size']} entries, root "
        f"`{ledger['root']}`, head signed {ledger['head_time']}, cosigned by "
        f"{md(', '.join(ledger['witnesses']) or 'no member yet')}.\n",
        "## Funds\n",
        _table(
            ["funds", "yen"],
            [["received", fig(funds["received"])]]
            + [[f"of which {k}", fig(f)] for k, f in funds["by_kind"].items()]
            + [
                ["allocated to projects", fig(funds["allocated"])],
                ["not yet allocated", fig(funds["unallocated"])],
                ["spent by projects", fig(funds["spent"])],
            ],
        ),
    ]
    if "sources" in funds:
        parts.append(
            _table(
                ["source", "kind", "from", "yen", "note", "entry"],
                [
                    [
                        md(s["source"]),
                        md(s["kind"]),
                        md(s["from"]),
                        f"¥{s['amount_yen']:,}",
                        md(s["note"]),
                        cites(s["cites"]),
                    ]
                    for s in funds["sources"]
                ],
            )
        )
    for theme in doc["themes"]:
        rank = f"Priority {theme['rank']}. " if theme["rank"] else ""
        parts.append(
            f"## {md(theme['title'])}{cites(theme['cites'])}\n\n"
            f"{rank}{md(theme['description'])}\n\n"
            f"Allocated {fig(theme['allocated_yen'])}, spent {fig(theme['actual_yen'])}.\n"
        )
        parts += [_project(p) for p in theme["projects"]]
    parts += ["## ε spent per dataset, all projects\n", _epsilon(doc["epsilon"])]
    if doc["spinouts"]:
        parts += [
            "## Spin-outs\n",
            _table(
                ["spin-out", "founders", "theme", "project", "motion", "entry"],
                [
                    [
                        md(s["spinout"]),
                        md(", ".join(s["founders"])),
                        md(s["theme"] or ""),
                        md(s["project"] or ""),
                        md(s["motion"]),
                        cites(s["cites"]),
                    ]
                    for s in doc["spinouts"]
                ],
            ),
        ]
    if doc["other_licences"]:
        parts += ["## Licences of models outside any project\n", _licences(doc["other_licences"])]
    if "board" in doc:
        board = doc["board"]
        parts += [
            "## The board\n",
            f"Open motions: {board['open']}.\n",
            _table(
                ["motion", "decision", "payload", "status", "closes", "votes", "tally", "entries"],
                [
                    [
                        md(m["motion"]),
                        md(m["decision"]),
                        md(m["payload"]),
                        md(m["status"]),
                        md(m["closes_at"]),
                        md(", ".join(f"{k} {v}" for k, v in m["votes"].items())),
                        md(m["tally"]["reason"]),
                        cites(m["cites"]),
                    ]
                    for m in board["motions"]
                ],
            ),
        ]
    if "for_member" in doc:
        mine = doc["for_member"]
        parts += [
            f"## For {md(mine['member'])}{cites(mine['cites'])}\n",
            _epsilon(mine["datasets"]),
            _table(
                ["model", "your share"],
                [[md(c["model"]), fig(c["share"])] for c in mine["contributions"]],
            ),
            _table(
                ["licence", "period", "your royalty"],
                [
                    [md(lic["licence"]), md(p["period"]), fig(p["payout_yen"])]
                    for lic in mine["payouts"]
                    for p in lic["periods"]
                ],
            ),
            f"Total paid to you: {fig(mine['payouts_total_yen'])}\n",
        ]
    parts += [
        "## Appendix: the ledger entries cited\n",
        _table(
            ["seq", "kind", "actor", "time (UTC)", "leaf hash"],
            [
                [
                    f'<a id="entry-{int(a["seq"])}"></a>{int(a["seq"])}',
                    md(a["kind"]),
                    md(a["actor"]),
                    a["time"],
                    f"`{a['leaf_hash']}`",
                ]
                for a in doc["appendix"]
            ],
        ),
    ]
    return "\n".join(parts)
