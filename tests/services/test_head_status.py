"""The head status the overview shows: every signature checked here, not taken on trust."""

import json
from pathlib import Path

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CosignatureRow, TreeHeadRow
from kumiai.services import members, transparency
from kumiai.services.consortium import init_consortium
from kumiai.services.head_status import head_status


def test_witness_status_checks_the_head_and_every_cosignature(tmp_path: Path) -> None:
    consortium = init_consortium(tmp_path / "c")
    for name, kind in (("lab", "university"), ("kita", "hospital")):
        members.add_member(consortium, name, kind)
    transparency.witness_all(consortium)
    status = head_status(consortium)
    assert status.verified and status.head == transparency.latest_head(consortium)
    assert [(c.witness, c.valid) for c in status.cosignatures] == [("kita", True), ("lab", True)]
    assert [(w.member, w.last_cosigned, w.current) for w in status.witnesses] == [
        ("kita", status.head.size, True),
        ("lab", status.head.size, True),
    ]

    # A new member joins: a new head nobody has cosigned; the newcomer never witnessed.
    members.add_member(consortium, "minami", "hospital")
    later = head_status(consortium)
    assert later.head.size == status.head.size + 1 and later.cosignatures == ()
    assert [(w.member, w.last_cosigned, w.current) for w in later.witnesses] == [
        ("kita", status.head.size, False),
        ("lab", status.head.size, False),
        ("minami", None, False),
    ]


def test_a_forged_cosignature_or_head_shows_as_such(tmp_path: Path) -> None:
    consortium = init_consortium(tmp_path / "c")
    members.add_member(consortium, "lab", "university")
    members.add_member(consortium, "kita", "hospital")
    transparency.witness_all(consortium)
    size = transparency.latest_head(consortium).size
    with transaction(consortium.sessions) as session:
        lab = session.get(CosignatureRow, (size, "lab"))
        kita = session.get(CosignatureRow, (size, "kita"))
        lab.signature = kita.signature  # kita's signature passed off as lab's
    status = head_status(consortium)
    assert [(c.witness, c.valid) for c in status.cosignatures] == [("kita", True), ("lab", False)]
    assert {w.member: w.current for w in status.witnesses} == {"kita": True, "lab": False}
    assert status.verified

    with transaction(consortium.sessions) as session:
        row = session.scalars(select(TreeHeadRow).where(TreeHeadRow.size == size)).one()
        root = json.loads(row.document)["head"]["root"]
        row.document = row.document.replace(root, "0" * 64)  # rewritten under the old signature
    forged = head_status(consortium)
    assert forged.head.root == "0" * 64 and not forged.verified
    assert not any(c.valid for c in forged.cosignatures)  # they signed the real head
