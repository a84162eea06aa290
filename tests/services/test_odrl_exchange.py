"""`agreement export|import --odrl` on a real consortium: read-only, checked against the steward."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AgreementRow, LedgerEntryRow
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.odrl import to_policy
from kumiai.services import members
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.odrl import IDENTICAL, NOT_HELD, export_odrl, import_odrl
from tests.interfaces.test_cli import assert_user_error, kumiai
from tests.services.helpers import heart_consortium


def _counts(consortium) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with transaction(consortium.sessions) as session:
        return (
            session.query(LedgerEntryRow).count(),
            session.query(AgreementRow).count(),
        )


@pytest.fixture
def consortium(home: Path):  # type: ignore[no-untyped-def]
    made, _ = heart_consortium(
        home, hospitals=("cleveland-clinic", "va-long-beach"), epsilon_cap=1.0, min_cohort=20
    )
    return made


def _agreement(consortium) -> str:  # type: ignore[no-untyped-def]
    return list_agreements(consortium)[0].id


def test_export_then_import_is_the_agreement_held_and_records_nothing(consortium) -> None:  # type: ignore[no-untyped-def]
    before = _counts(consortium)
    agreement = _agreement(consortium)
    policy = export_odrl(consortium, agreement)
    result = import_odrl(consortium, json.dumps(policy))
    assert result.stored == IDENTICAL
    assert result.differences == ()
    assert result.signature == "valid"
    assert result.terms["epsilon_cap"] == 1.0
    assert result.terms["min_cohort"] == 20
    assert result.revoked is False
    assert _counts(consortium) == before


def test_a_raised_cap_is_refused_and_changes_nothing(consortium) -> None:  # type: ignore[no-untyped-def]
    policy = export_odrl(consortium, _agreement(consortium))
    [cap] = [
        c for c in policy["permission"][0]["constraint"] if c["leftOperand"] == "kumiai:epsilonCap"
    ]
    cap["rightOperand"] = 10.0
    before = _counts(consortium)
    with pytest.raises(InvalidInput, match=r"policy refused: .*changed after cleveland-clinic"):
        import_odrl(consortium, json.dumps(policy))
    assert _counts(consortium) == before


def test_an_unsigned_policy_is_refused_as_a_proposal(consortium) -> None:  # type: ignore[no-untyped-def]
    policy = export_odrl(consortium, _agreement(consortium))
    del policy["kumiai:signature"]
    with pytest.raises(InvalidInput, match="carries no steward's signature"):
        import_odrl(consortium, json.dumps(policy))


def test_a_policy_from_a_steward_who_is_not_a_member_cannot_be_checked(consortium) -> None:  # type: ignore[no-untyped-def]
    policy = export_odrl(consortium, _agreement(consortium))
    policy["assigner"] = "urn:kumiai:member:stranger"
    with pytest.raises(NotFound, match="stranger"):
        import_odrl(consortium, json.dumps(policy))


def test_a_rotated_key_still_vouches_for_what_it_signed(consortium) -> None:  # type: ignore[no-untyped-def]
    agreement = _agreement(consortium)
    policy = export_odrl(consortium, agreement)
    members.rotate_key(consortium, policy["assigner"].rsplit(":", 1)[1])
    assert import_odrl(consortium, json.dumps(policy)).stored == IDENTICAL


def test_a_revoked_agreement_imports_as_revoked(consortium) -> None:  # type: ignore[no-untyped-def]
    agreement = _agreement(consortium)
    revoke_agreement(consortium, agreement, "ethics approval withdrawn")
    result = import_odrl(consortium, json.dumps(export_odrl(consortium, agreement)))
    assert (result.stored, result.revoked) == (IDENTICAL, True)


def test_a_validly_signed_agreement_not_held_here_is_reported_so(consortium) -> None:  # type: ignore[no-untyped-def]
    with transaction(consortium.sessions) as session:
        held = SignedAgreement.from_json(session.get(AgreementRow, _agreement(consortium)).document)
    other = replace(held.terms, agreement_id="agr-elsewhere", max_rounds=5)
    signed = consortium.node(other.steward).sign_agreement(other)  # never stored or logged
    result = import_odrl(consortium, json.dumps(to_policy(signed)))
    assert (result.stored, result.terms["max_rounds"]) == (NOT_HELD, 5)


def test_export_and_import_through_the_cli(consortium, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agreement = _agreement(consortium)
    out = tmp_path / "policy.jsonld"
    done = kumiai(home, "agreement", "export", agreement, "--odrl", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["@type"] == "Agreement"
    shown = kumiai(home, "agreement", "import", str(out), "--odrl", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["stored"] == IDENTICAL
    table = kumiai(home, "agreement", "import", str(out), "--odrl")
    assert "identical, byte for byte" in table.stdout
    policy = json.loads(out.read_text())
    policy["permission"][0]["constraint"].append(
        {"leftOperand": "spatial", "operator": "eq", "rightOperand": "JP"}
    )
    out.write_text(json.dumps(policy))
    assert_user_error(
        kumiai(home, "agreement", "import", str(out), "--odrl"),
        "the left operand 'spatial' is not one kumiai enforces",
        "kumiai:epsilonCap lteq",
    )
    assert_user_error(kumiai(home, "agreement", "export", agreement), "give --odrl")
