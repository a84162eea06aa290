"""The dashboard's pages through Starlette's test client: every page answers 200 with the
figures the services hold, under a strict Content-Security-Policy, with hostile names
escaped; errors are pages that say what was wrong.

The association is built once for the module through the real services (a released model
with contribution shares, a licence, royalties, motions), with a project and a theme whose
names are `<script>`; its nodes witness the ledger, then one more motion is left open.
"""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow
from kumiai.domain import merkle
from kumiai.domain.clock import utc_now
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.web.app import POLICY
from kumiai.services import agreements, privacy, projects, royalties, transparency
from kumiai.services.agreements import refuse_request, request_data_use, sign_request
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.members import list_members
from kumiai.services.motions import cast_vote, propose_motion
from kumiai.services.projects import propose_project
from tests.domain.report_ledger import EVIL
from tests.interfaces.privacy_charts import assert_charts_end_at_the_table
from tests.interfaces.web_sign_in import sign_in
from tests.services.reported import build_association

RAW = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
PAGES = (
    "/ui/",
    "/ui/projects",
    "/ui/projects/heart",
    "/ui/projects/hostile",
    "/ui/models",
    "/ui/models/heart-v1",
    "/ui/privacy",
    "/ui/ledger",
    "/ui/ledger/entries/0",
    "/ui/ledger/consistency",
    "/ui/board",
    "/ui/investor",
    "/ui/jobs/job-heart-v1",
    "/ui/members/cleveland-clinic",
)


@dataclass(frozen=True)
class Web:
    home: Path
    client: TestClient
    witnessed: int  # the size of the head every node cosigned


def dashboard_association(root: Path) -> tuple[Consortium, int]:
    """Every page's records at `root / "c"`: the association, a hostile project, a request
    signed and one refused, a head every node cosigned (its size returned), then one motion
    left open with a vote."""
    consortium = build_association(root / "c", root)
    propose_project(
        consortium, name="hostile", title=EVIL, purpose=EVIL, proposed_by="lab", members=()
    )
    asked = {
        dataset: request_data_use(
            consortium,
            project="heart",
            dataset=dataset,
            requested_by="lab",
            max_rounds=5,
            expires_at=utc_now() + timedelta(days=30),
            epsilon_cap=2.0,
        ).id
        for dataset in ("cleveland-clinic-heart", "hungarian-cardiology-heart")
    }
    sign_request(consortium, asked["cleveland-clinic-heart"])
    refuse_request(consortium, asked["hungarian-cardiology-heart"], "no ethics approval yet")
    transparency.witness_all(consortium)
    witnessed = transparency.latest_head(consortium).size
    motion = propose_motion(
        consortium,
        decision="set-priorities",
        payload={"ranking": ["medical", "agents"]},
        proposer="lab",
    )
    cast_vote(consortium, motion.id, "lab", "yes")
    return consortium, witnessed


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Web:
    root = tmp_path_factory.mktemp("web")
    consortium, witnessed = dashboard_association(root)
    with TestClient(create_app(root / "c", dashboard=True)) as client:
        sign_in(client, consortium.coordinator_key())  # the operator sees every page
        yield Web(root / "c", client, witnessed)


def get(web: Web, path: str) -> str:
    response = web.client.get(path)
    assert response.status_code == 200, (path, response.text[:2000])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_every_page_answers_under_a_strict_policy_and_loads_only_local_files(web: Web) -> None:
    for path in PAGES:
        response = web.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == POLICY
        assert POLICY.startswith("default-src 'self';") and "unsafe" not in POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        html = response.text
        # One script, ours, by file: no inline script, nothing from another origin.
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/ui/static/htmx.min.js" defer>'
        ], path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        # Headings in order: one h1, and no level skipped on the way down.
        levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", html)]
        assert levels.count(1) == 1, (path, levels)
        assert all(b <= a + 1 for a, b in pairwise(levels)), (path, levels)
        # Every input has its label.
        for field in re.findall(r'<input id="([^"]+)"', html):
            assert f'<label for="{field}">' in html, (path, field)
    htmx = web.client.get("/ui/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]


def test_hostile_names_are_text_on_every_page(web: Web) -> None:
    for path in (*PAGES, "/ui/ledger?project=hostile"):
        html = get(web, path)
        assert RAW not in html, path
    assert get(web, "/ui/projects/hostile").count(ESCAPED) == 2  # the title and the purpose
    assert ESCAPED in get(web, "/ui/")  # the theme's title
    assert ESCAPED in get(web, "/ui/projects")


def test_the_overview_shows_the_verified_head_its_cosignatures_and_every_witness(
    web: Web,
) -> None:
    html = get(web, "/ui/")
    head = transparency.latest_head(open_home(web))
    assert f'data-size="{head.size}" data-root="{head.root}" class="verified"' in html
    # The open motion came after the nodes witnessed: the latest head has no cosignature,
    # and each member shows the size it last cosigned.
    assert head.size > web.witnessed
    assert "No node has cosigned this head yet" in html
    members = [m.name for m in list_members(open_home(web))]
    assert len(members) == 6  # the spin-out kokoro-ai joined by motion
    for member in members:
        assert f'<td><a href="/ui/members/{member}">{member}</a></td>' in html
    assert html.count(f"last cosigned size {web.witnessed}") == 6
    assert '<a href="/ui/projects/heart">heart</a>' in html


def test_the_project_page_shows_budget_milestones_and_jobs(web: Web) -> None:
    html = get(web, "/ui/projects/heart")
    assert '<dd id="purpose">diagnosis</dd>' in html
    assert "<dt>theme</dt><dd>medical</dd>" in html
    assert '<td class="n">¥4,500,000</td>' in html  # allocated by two motions
    assert '<td class="n" id="spent">¥1,900,000</td>' in html
    assert 'id="left">¥2,600,000' in html
    assert "<td>first-model</td><td>First-Model</td><td>2026-12-31</td><td>accepted" in html
    assert "<td>paper</td><td>Paper</td><td>2027-01-15</td><td>rejected" in html
    assert "of a quota of 90" in html
    assert '<a href="/ui/jobs/job-heart-v1">job-heart-v1</a>' in html
    assert '<a href="/ui/models/heart-v1">heart-v1</a>' in html


def test_the_model_page_draws_each_share_and_lists_its_licence(web: Web) -> None:
    html = get(web, "/ui/models/heart-v1")
    bars = dict(re.findall(r'data-figure="share/([^"]+)" data-value="([^"]+)"', html))
    assert bars == {
        "cleveland-clinic-heart": "0.05",
        "hungarian-cardiology-heart": "0.03",
        "va-long-beach-heart": "-0.02",
    }
    assert 'class="bar share-negative"' in html
    (seq,) = [e.seq for e in transparency.show_entries(open_home(web), kind="model.contributions")]
    assert f'From ledger entry <a href="/ui/ledger/entries/{seq}">{seq}</a>' in html
    assert "<td>licence-1</td><td>kokoro-ai</td><td>cardiology triage</td><td>JP</td>" in html
    assert "<td>500 bp</td>" in html


def test_the_ledger_browser_filters_by_kind_member_and_project(web: Web) -> None:
    everything = get(web, "/ui/ledger")
    size = transparency.latest_head(open_home(web)).size
    assert f"<p>{size} entries;" in everything
    motions = get(web, "/ui/ledger?kind=motion.&member=&project=")
    kinds = set(re.findall(r"</td><td>[^<]*</td><td>([a-z.-]+)</td><td><code>", motions))
    assert kinds == {"motion.proposed", "motion.voted", "motion.closed"}
    shown = re.findall(r'<tr data-seq="(\d+)">', motions)
    expected = transparency.show_entries(open_home(web), kind="motion.")
    assert [int(s) for s in shown] == [e.seq for e in reversed(expected)]
    hostile = get(web, "/ui/ledger?project=hostile")
    assert re.findall(r"<td>(project\.[a-z]+)</td>", hostile) == ["project.proposed"]
    lab = re.findall(r'<tr data-seq="(\d+)">', get(web, "/ui/ledger?member=kokoro-corp"))
    assert lab and len(lab) < len(re.findall(r'<tr data-seq="(\d+)">', everything))


def test_an_entry_page_shows_an_inclusion_path_that_verifies(web: Web) -> None:
    seq = 7
    html = get(web, f"/ui/ledger/entries/{seq}")
    proof = transparency.prove_inclusion(open_home(web), seq)
    attrs = dict(re.findall(r'data-(seq|leaf|size|root|verified)="([^"]*)"', html))
    assert attrs == {
        "seq": str(seq),
        "leaf": proof.leaf_hash,
        "size": str(proof.head.size),
        "root": proof.head.root,
        "verified": "true",
    }
    path = re.findall(r'<code class="sibling">([0-9a-f]{64})</code>', html)
    assert path == proof.path and len(path) >= 3
    results = re.findall(r'<code class="result">([0-9a-f]{64})</code>', html)
    assert len(results) == len(path) and results[-1] == proof.head.root
    assert html.count("= the signed root") == 1 and "≠" not in html
    # The page's own numbers prove it, checked here without the server's word...
    leaf, root = bytes.fromhex(attrs["leaf"]), bytes.fromhex(attrs["root"])
    hashes = [bytes.fromhex(p) for p in path]
    assert merkle.verify_inclusion(leaf, seq, proof.head.size, hashes, root)
    # ...and one wrong step in the path would not.
    forged = [hashes[0][::-1], *hashes[1:]]
    assert not merkle.verify_inclusion(leaf, seq, proof.head.size, forged, root)


def test_consistency_between_two_sizes_and_a_wrong_request(web: Web) -> None:
    size = transparency.latest_head(open_home(web)).size
    html = get(web, f"/ui/ledger/consistency?old={web.witnessed}&new={size}")
    assert 'id="consistency" data-verified="true" class="verified"' in html
    assert f"size {web.witnessed} (root" in html
    bad = web.client.get("/ui/ledger/consistency?old=9&new=3")
    assert bad.status_code == 400
    assert "give 0 &lt;= old &lt;= new" in bad.text and 'id="error"' in bad.text
    beyond = web.client.get(f"/ui/ledger/consistency?old=1&new={size + 5}")
    assert beyond.status_code == 404 and f"has {size} entries" in beyond.text


def test_the_export_downloads_the_whole_log(web: Web) -> None:
    response = web.client.get("/ui/ledger/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="ledger-export.jsonl"'
    data, count = transparency.export_lines(open_home(web))
    assert response.content == data and count > 40


def test_the_board_shows_open_and_closed_motions_with_tallies(web: Web) -> None:
    html = get(web, "/ui/board")
    (open_row,) = re.findall(
        r'<tr data-motion="([^"]+)"><td>[^<]+</td><td>set-priorities</td>'
        r'<td><ul class="record"><li><span class="key">ranking</span>: medical, agents</li>',
        html,
    )
    start = html.index(f'<tr data-motion="{open_row}">')
    row = html[start : html.index("</tr>", start)]
    assert "lab: yes" in row and "1 yes, 0 no, 0 abstain of 5 eligible" in row
    closed = html[html.index('id="closed-motions"') :]
    assert closed.count("<td>passed</td>") >= 5 and "5 yes, 0 no, 0 abstain of 5" in closed
    assert "<td>1</td><td>adopted</td>" in html


def test_the_investor_page_links_every_figure_to_its_ledger_entry(web: Web) -> None:
    html = get(web, "/ui/investor")
    assert 'href="#entry-' not in html
    links = re.findall(r'<a href="/ui/ledger/entries/(\d+)">\1</a>', html)
    assert len(links) > 20
    size = transparency.latest_head(open_home(web)).size
    assert all(0 <= int(s) < size for s in links)
    royalty = re.search(r'data-figure="[^"]*licence-1/royalty_yen" data-value="(\d+)"', html)
    assert royalty and int(royalty.group(1)) == (12_345_678 + 1_000_001) * 5 // 100
    assert '<link rel="stylesheet" href="/ui/report.css">' in html
    css = web.client.get("/ui/report.css")
    assert css.headers["content-type"].startswith("text/css") and ".figure" in css.text


def test_errors_are_pages_that_say_what_was_wrong(web: Web) -> None:
    unknown = web.client.get("/ui/projects/nope")
    assert unknown.status_code == 404
    assert "unknown project &#39;nope&#39;; see `kumiai project list`" in unknown.text
    assert web.client.get("/ui/models/nope").status_code == 404
    assert web.client.get("/ui/ledger/entries/99999").status_code == 404
    assert web.client.get("/ui/no-such-page").status_code == 404
    hostile = web.client.get("/ui/projects/%3Cscript%3Ex")
    assert hostile.status_code == 404 and "<script>x" not in hostile.text
    # The API beside it still answers JSON, and still wants a signed request for records.
    api = web.client.get("/projects/nope")
    assert api.status_code == 401
    assert api.json()["error"].startswith("this route needs a signed request")


def test_the_coordinators_served_app_shows_an_anonymous_viewer_only_the_public_head(
    web: Web,
) -> None:
    """Unsigned, the pages show no more than the API does without a signed request."""
    with TestClient(create_app(web.home)) as served:
        overview = served.get("/ui/")
        assert overview.status_code == 200
        assert 'id="head"' in overview.text and "Not signed in" in overview.text
        assert 'id="members"' not in overview.text and 'id="projects"' not in overview.text
        project = served.get("/ui/projects/heart", follow_redirects=False)
        assert project.status_code == 303
        assert project.headers["location"] == "/ui/signin?next=/ui/projects/heart"
        assert served.get("/projects").status_code == 401


def open_home(web: Web):  # type: ignore[no-untyped-def]
    from kumiai.services.consortium import open_consortium

    return open_consortium(web.home)


SECRET = "boom at /srv/kumiai/db.sqlite: SELECT * FROM members"


def test_an_unexpected_error_is_a_page_with_a_reference_the_log_also_holds(
    web: Web, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(projects, "list_projects", broken)  # the service the page calls
    with caplog.at_level(logging.ERROR, logger="kumiai.web"):
        failed = web.client.get("/ui/projects")
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("text/html")
    assert failed.headers["content-security-policy"] == POLICY
    reference = re.search(r'<code id="reference">(err-[0-9a-f]{12})</code>', failed.text)
    assert reference, failed.text
    assert f"Give the operator the reference {reference.group(1)}" in failed.text
    for leaked in ("boom", "/srv/kumiai", "SELECT", "RuntimeError", "Traceback"):
        assert leaked not in failed.text
    assert 'id="back" href="/ui/"' in failed.text
    [record] = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert "GET /ui/projects" in record.getMessage()
    assert record.exc_info and str(record.exc_info[1]) == SECRET  # the traceback, logged
    assert "Traceback" in caplog.text and SECRET in caplog.text
    # Another failure, another reference.
    again = web.client.get("/ui/projects").text
    assert reference.group(1) not in again and 'id="reference"' in again


def test_a_malformed_address_is_a_422_page_and_the_api_keeps_json(web: Web) -> None:
    bad = web.client.get("/ui/ledger/entries/first")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "this address is not valid: path seq: Input should be a valid integer" in bad.text
    assert 'id="back" href="/ui/"' in bad.text and "<h1>Error 422</h1>" in bad.text
    missing = web.client.get("/ui/no-such-page")
    assert "no page /ui/no-such-page" in missing.text and 'id="back"' in missing.text
    api = web.client.get("/ledger/entries/first")
    assert api.headers["content-type"].startswith("application/json")
    assert "valid integer" in api.json()["error"]


def test_a_members_page_holds_its_budgets_agreements_decisions_shares_and_royalties(
    web: Web,
) -> None:
    member = "cleveland-clinic"
    consortium = open_consortium(web.home)
    html = get(web, f"/ui/members/{member}")
    assert "<h1>Member cleveland-clinic</h1>" in html
    [line] = [b for b in privacy.budgets(consortium) if b.member == member]
    row = re.search(rf'<tr id="dataset-{line.dataset}">(.*?)</tr>', html)
    assert row, html
    for cls, value in (("spent", line.spent), ("committed", line.committed), ("left", line.left)):
        assert f'class="n {cls}">{"—" if value is None else f"{value:.4f}"}</td>' in row.group(1)
    held = [a for a in agreements.list_agreements(consortium) if a.steward == member]
    assert held and all(f'id="agreement-{a.id}"' in html for a in held)
    assert [(a.project, a.dataset) for a in held] == [("heart", f"{member}-heart")]
    terms = re.search(rf'<tr id="agreement-{held[0].id}">(.*?)</tr>', html, re.S)
    assert terms and "<td>diagnosis</td><td>train, evaluate</td>" in terms.group(1)
    assert '<td class="n">5</td><td class="n">2.0000</td>' in terms.group(1)
    assert "in force" in terms.group(1)
    decided = [r for r in agreements.list_requests(consortium) if r.steward == member]
    assert decided and all(f'id="decision-{r.id}"' in html for r in decided)
    assert "no ethics approval yet" not in html  # hungarian-cardiology's decision, not its
    asked = [r for r in agreements.list_requests(consortium) if r.requested_by == "lab"]
    assert 'id="asked"' not in html and len(asked) == 2  # lab asked; cleveland did not
    lab = get(web, "/ui/members/lab")
    assert all(f'id="asked-{r.id}"' in lab for r in asked)
    refused = get(web, "/ui/members/hungarian-cardiology")
    assert "<td>refused</td><td>no ethics approval yet</td>" in refused.replace(
        ' class="status"', ""
    )
    share = re.search(rf'id="share-heart-v1-{member}-heart">.*?class="n share">([^<]+)<', html)
    assert share and share.group(1) == "0.0500"  # to four places, as the report shows it
    statement = royalties.statements(consortium, member).statements[0]
    payouts = [int(y) for y in re.findall(r'class="n payout" data-yen="(\d+)"', html)]
    assert payouts == [line.payout_yen for line in statement.lines] and payouts
    assert f'id="royalty-total" data-yen="{statement.total_yen}"' in html
    assert sum(payouts) == statement.total_yen
    assert "cosigned" in re.search(r'<p id="witness">(.*?)</p>', html, re.S).group(1)
    # The overview links each member to its page (the operator may open every one).
    assert f'<a href="/ui/members/{member}">{member}</a>' in get(web, "/ui/")


PYTHON_OR_JSON = re.compile(r"\{'|\{\"|\{&#34;|\{&quot;|\bNone\b|\bTrue\b|\bFalse\b|\[&#39;|\['")


def test_settings_lineage_and_payloads_read_as_text_not_python_or_json(web: Web) -> None:
    """A job's settings, a model's lineage and a motion's payload are dictionaries: no page
    prints one raw (`{'delta': None}`, `{"amount": 2000000}`)."""
    for path in ("/ui/models/heart-v1", "/ui/jobs/job-heart-v1", "/ui/board"):
        main = get(web, path).split('<main id="main"', 1)[-1]
        assert not PYTHON_OR_JSON.search(main), (path, PYTHON_OR_JSON.search(main))
    lineage = get(web, "/ui/models/heart-v1")
    datasets = "cleveland-clinic-heart, hungarian-cardiology-heart, va-long-beach-heart"
    assert f'<th scope="row">datasets</th><td>{datasets}</td>' in lineage
    assert '<th scope="row">settings</th><td>—</td>' in lineage  # an empty record, a dash
    board = get(web, "/ui/board")
    amounts = re.findall(r'<span class="key">amount</span>: (¥[\d,]+)</li>', board)
    assert amounts and all(re.fullmatch(r"¥\d{1,3}(,\d{3})*", a) for a in amounts), amounts


def test_the_model_page_tabulates_each_metric_with_its_name(web: Web) -> None:
    html = get(web, "/ui/models/heart-v1")
    table = html[
        html.index('<table id="site-metrics">') : html.index(
            "</table>", html.index('<table id="site-metrics">')
        )
    ]
    assert '<th scope="col">AUC</th>' in table
    assert '<tr class="total"><th scope="row">overall</th><td class="n">0.900</td></tr>' in table


def test_the_investor_page_has_no_empty_header_nor_an_empty_column(web: Web) -> None:
    """axe's 'empty-table-header': every header cell names its column; the investor's
    report carries no member payouts (the board's), so it has no payouts column."""
    html = get(web, "/ui/investor")
    assert re.search(r"<th[^>]*>\s*</th>", html) is None
    assert "<th>funds</th><th>yen</th>" in html and "<th>licence&#x27;s money</th>" in html
    assert "<th>payouts</th>" not in html


def test_the_project_lists_name_each_projects_theme(web: Web) -> None:
    for path in ("/ui/projects", "/ui/"):
        html = get(web, path)
        assert '<th scope="col">theme</th><th scope="col">status</th>' in html
        assert re.search(r'/ui/projects/heart">heart</a></td><td>[^<]*</td><td>medical</td>', html)
        assert re.search(r"hostile</a></td><td>[^<]*</td><td>—</td>", html), path


def test_a_contribution_job_is_not_shown_as_a_job_that_never_ran(web: Web) -> None:
    """A contribution job mirrors the nodes' charge: no federated rounds, so neither
    "0 of 30 rounds completed" nor "No round has completed yet"."""
    now = utc_now()
    with transaction(open_home(web).sessions) as session:
        session.add(
            JobRow(
                id="job-shares",
                project="heart",
                kind="contribution",
                status="completed",
                spec_json='{"rounds": 30}',
                planned_rounds=30,
                completed_rounds=0,
                created_at=now,
                started_at=now,
                finished_at=now,
            )
        )
    job = get(web, "/ui/jobs/job-shares")
    assert "a contribution job runs at each site's node and records no federated" in job
    assert "rounds completed" not in job and "No round has completed yet" not in job
    project = get(web, "/ui/projects/heart")
    row = project[project.index('<a href="/ui/jobs/job-shares">') :]
    assert "<td>contribution</td><td>completed</td><td>—</td>" in row[: row.index("</tr>")]
    train = project[project.index('<a href="/ui/jobs/job-heart-v1">') :]
    assert re.search(r"<td>\d+ / \d+</td>", train[: train.index("</tr>")])


def test_the_models_list_shows_each_models_overall_scores(web: Web) -> None:
    html = get(web, "/ui/models")
    assert '<th scope="col">accuracy</th><th scope="col">AUC</th>' in html
    row = html[html.index('<a href="/ui/models/heart-v1">') :]
    assert '<td class="n">—</td><td class="n">0.900</td>' in row[: row.index("</tr>")]


def test_each_privacy_chart_ends_at_the_tables_spent_committed_and_left(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On its own copy of the association, with a lifetime budget set at one node (the
    shared one charts nothing: it spent no ε and set no budget)."""
    root = tmp_path_factory.mktemp("web-privacy")
    consortium, _ = dashboard_association(root)
    privacy.set_budget(consortium, "cleveland-clinic-heart", 2.5)
    with TestClient(create_app(root / "c", dashboard=True)) as client:
        sign_in(client, consortium.coordinator_key())
        html = client.get("/ui/privacy").text
    assert_charts_end_at_the_table(html, privacy.budgets(consortium), {"cleveland-clinic-heart"})
    assert "left 2.5000 of its lifetime budget 2.5000" in html
