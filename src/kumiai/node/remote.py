"""A member's node on its own machine, acting through the coordinator's API.

The node joins with an invitation, pinning the coordinator's CA certificate and key only
after both match the invitation's fingerprints; afterwards it reaches the coordinator over
TLS with that CA alone and signs every request with its own key. Each act is run in
rounds (services.signed_acts on the coordinator): the coordinator shows the exact document
the act needs signed; the node checks it is what its member meant (its own member, the
kind of act, the request or agreement named, the reason given) before it signs, and
refuses by name otherwise. The key never leaves the node home.
"""

import json
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kumiai.adapters.coordinator_client import CoordinatorClient, fetch_unverified
from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.adapters.tls import certificate_fingerprint
from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import parse_iso, to_iso, utc_now
from kumiai.domain.errors import DataError, InvalidInput, NotFound, StateError, Unauthenticated
from kumiai.domain.invitation import check_trust, read_token
from kumiai.domain.job import parse_job_kinds
from kumiai.domain.ledger import Entry
from kumiai.domain.motion import choice_of, shown_digest
from kumiai.domain.schema import ColumnType, parse_target
from kumiai.node.home import NodeHome
from kumiai.node.port import LocalDataset, LocalNode

PIN, PINNED_CA = "coordinator.json", "coordinator-ca.pem"
MAX_ROUNDS = 6  # signatures an act may need (agreement, entry), and a few ledger moves


@dataclass(frozen=True)
class Intent:
    """What the member meant: the entry kind, and payload fields it must carry exactly."""

    kind: str
    payload: dict[str, Any]
    agreement: dict[str, Any] | None = None  # agreement terms that must match, if one is signed
    then: tuple["Intent", ...] = ()  # further entries the same act writes, each checked so

    def meant(self, kind: object) -> "Intent":
        """The intent for an entry of `kind`: this one, or one of the entries that follow."""
        return next((i for i in self.then if i.kind == kind), self)


def _pinned(root: Path) -> dict[str, str]:
    path = root / PIN
    if not path.is_file():
        raise NotFound(
            f"{root} has joined no coordinator (no {PIN}); join first: kumiai node init "
            "--home NODE_HOME --coordinator https://HOST:PORT --invite TOKEN"
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _fingerprint(path: Path) -> str:
    try:
        return certificate_fingerprint(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a readable PEM certificate ({exc})") from None


def pinned_ca(home: Path, ca_cert: Path | None = None) -> Path:
    """The CA the node trusts for the SuperLink: the one it pinned at `node init`.

    A `--ca` file is accepted only when its SHA-256 fingerprint is the pinned one: a swapped
    CA would let anyone holding its key stand in for the coordinator's SuperLink. A node
    home made by the coordinator itself (no pin) must name its CA."""
    pinned = home / PINNED_CA
    if not pinned.is_file():
        if ca_cert is None:
            raise NotFound(
                f"{home} pinned no CA at joining ({pinned} is missing); pass the consortium's "
                "CA with --ca, or join with kumiai node init"
            )
        if not ca_cert.is_file():
            raise InvalidInput(f"{ca_cert} does not exist; pass the consortium's CA certificate")
        return ca_cert
    if ca_cert is None:
        return pinned
    if not ca_cert.is_file():
        raise InvalidInput(f"{ca_cert} does not exist; leave out --ca to use the pinned CA")
    given, expected = _fingerprint(ca_cert), _fingerprint(pinned)
    if given != expected:
        raise InvalidInput(
            f"--ca {ca_cert} has SHA-256 fingerprint {given}, not {expected}, the CA pinned at "
            f"joining ({pinned}); leave out --ca to use the pinned one"
        )
    return ca_cert


def pinned_url(root: Path) -> str:
    """The coordinator's API this node joined (pinned at `node init`)."""
    return _pinned(root)["url"]


def client_for(root: Path) -> tuple[CoordinatorClient, LocalNode]:
    """The node's client: the pinned URL and CA, requests signed with the node's key."""
    pin = _pinned(root)
    node = LocalNode(root)
    client = CoordinatorClient(pin["url"], ca_cert=root / PINNED_CA, key=node.home.private_key())
    return client, node


def reader_for(root: Path, url: str) -> CoordinatorClient:
    """A client for reads at `url` (the pinned one or another name of it): the node's key
    signs, and only the CA pinned at joining is trusted."""
    _pinned(root)
    return CoordinatorClient(url, ca_cert=root / PINNED_CA, key=NodeHome(root).private_key())


def _entry_from(document: dict[str, Any]) -> Entry:
    try:
        entry = Entry(
            int(document["seq"]),
            parse_iso(str(document["time"])),
            str(document["actor"]),
            str(document["kind"]),
            dict(document["payload"]),
        )
    except (KeyError, TypeError, ValueError, InvalidInput):
        raise StateError(
            "the coordinator asked to sign a malformed ledger entry; refused"
        ) from None
    if canonical_json(entry.document()) != canonical_json(document):
        raise StateError("the coordinator asked to sign an entry not in kumiai's form; refused")
    return entry


def _check_intent(member: str, intent: Intent, what: str, document: dict[str, Any]) -> None:
    """Refuse, by name, a document that is not what the member meant."""
    if what == "agreement":
        terms = intent.agreement
        if terms is None or any(document.get(k) != v for k, v in terms.items()):
            raise StateError(
                f"the coordinator asked {member}'s node to sign agreement terms it did not "
                f"ask for ({document.get('agreement_id')} on {document.get('request_id')}); "
                "refused, nothing signed"
            )
        return
    intent = intent.meant(document.get("kind"))
    wrong = [
        k for k, v in {"actor": member, "kind": intent.kind}.items() if document.get(k) != v
    ] + [
        f"payload.{k}" for k, v in intent.payload.items() if document.get("payload", {}).get(k) != v
    ]
    if wrong:
        raise StateError(
            f"the coordinator asked {member}'s node to sign an entry ({document.get('kind')}) "
            f"whose {', '.join(wrong)} is not what {member} meant ({intent.kind}); "
            "refused, nothing signed"
        )


def run_act(
    client: CoordinatorClient,
    node: LocalNode,
    member: str,
    path: str,
    body: dict[str, Any],
    intent: Intent,
) -> tuple[Any, list[SignedAgreement]]:
    """Submit an act in rounds, signing only what matches `intent`; (result, agreements signed)."""
    signatures: list[str] = []
    signed_agreements: list[SignedAgreement] = []
    at: str | None = None
    for _ in range(MAX_ROUNDS):
        reply = client.post(path, {**body, "signatures": signatures, "at": at})
        if reply.get("status") == "done":
            return reply["result"], signed_agreements
        what, document, at = reply["what"], reply["document"], reply["at"]
        _check_intent(member, intent, what, document)
        if what == "agreement":
            try:
                terms = AgreementTerms.from_payload(document)
            except (KeyError, TypeError, ValueError):
                terms = None
            if terms is None or canonical_json(terms.payload()) != canonical_json(document):
                raise StateError("the agreement terms are not in kumiai's form; refused")
            agreement = node.sign_agreement(terms)
            signed_agreements.append(agreement)
            signatures.append(agreement.signature)
        else:
            payload = document.get("payload", {})
            if signed_agreements and payload.get("signature") != signed_agreements[-1].signature:
                raise StateError(
                    f"the coordinator asked {member}'s node to sign an entry that does not "
                    "carry the agreement it just signed; refused, nothing signed"
                )
            signatures.append(node.sign_entry(_entry_from(document)).signature)
    raise StateError(
        f"the coordinator asked for more than {MAX_ROUNDS} signatures for one act; stopped"
    )


# -- joining ------------------------------------------------------------------------------


def join_consortium(root: Path, url: str, token: str) -> dict[str, Any]:
    """Make the node's key in `root` and join the coordinator at `url` with the invitation."""
    invitation = read_token(token)
    if (root / "key.pem").exists() or (root.exists() and any(root.iterdir())):
        raise InvalidInput(f"{root} is not empty; a node joins into a new, empty home")
    trust = json.loads(fetch_unverified(url, "/trust"))
    ca_pem = str(trust["ca_cert"]).encode("ascii")
    coordinator_key = str(trust["coordinator_key"])
    check_trust(invitation, certificate_fingerprint(ca_pem), keys.fingerprint(coordinator_key))
    partial = root.with_name(f".{root.name}.joining-{secrets.token_hex(3)}")
    try:
        node = LocalNode(partial)
        public = node.join(invitation.member, invitation.kind, coordinator_key)
        write_atomic(partial / PINNED_CA, ca_pem)
        write_json_atomic(
            partial / PIN,
            {"url": url, "ca_sha256": invitation.ca, "coordinator_key": coordinator_key},
        )
        # From here on only the pinned CA: the server's certificate must chain to it.
        client = CoordinatorClient(url, ca_cert=ca_pem, key=node.home.private_key())
        try:
            if client.get("/trust") != trust:
                raise InvalidInput("the coordinator answered differently over the pinned CA")
            supernode_key = node.home.supernode_key()  # made here; the private half stays
            intent = Intent(
                "member.joined",
                {
                    "member": invitation.member,
                    "public_key": public,
                    "supernode_key": supernode_key,
                },
            )
            member, _ = run_act(
                client,
                node,
                invitation.member,
                "/join",
                {"token": token, "public_key": public, "supernode_key": supernode_key},
                intent,
            )
        finally:
            client.close()
        if root.exists():
            root.rmdir()
        partial.rename(root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return {"member": member, "home": str(root), "coordinator": url, "ca_sha256": invitation.ca}


# -- the steward's acts -------------------------------------------------------------------


def sign_request(root: Path, request_id: str) -> dict[str, Any]:
    """Sign a request's terms at this node; the signed agreement is kept in the home."""
    client, node = client_for(root)
    member = node.home.member_name
    agreement_id = f"agr-{secrets.token_hex(4)}"
    intent = Intent(
        "agreement.signed",
        {},
        agreement={"request_id": request_id, "agreement_id": agreement_id, "steward": member},
    )
    with client:
        result, signed = run_act(
            client,
            node,
            member,
            f"/requests/{request_id}/sign",
            {"agreement_id": agreement_id},
            intent,
        )
    node.store_agreement(signed[-1])
    return dict(result)


def refuse_request(root: Path, request_id: str, reason: str) -> dict[str, Any]:
    client, node = client_for(root)
    member = node.home.member_name
    intent = Intent("request.refused", {"request": request_id, "reason": reason.strip()})
    with client:
        result, _ = run_act(
            client, node, member, f"/requests/{request_id}/refuse", {"reason": reason}, intent
        )
    return dict(result)


def revoke_agreement(root: Path, agreement_id: str, reason: str) -> dict[str, Any]:
    """The node refuses from now on (written here first), then the coordinator records it."""
    client, node = client_for(root)
    member = node.home.member_name
    if node.home.agreement(agreement_id) is None:
        raise NotFound(f"this node holds no agreement {agreement_id!r}; see its agreements/ folder")
    node.revoke(agreement_id, to_iso(utc_now()), reason)
    intent = Intent("agreement.revoked", {"agreement": agreement_id})
    with client:
        result, _ = run_act(
            client, node, member, f"/agreements/{agreement_id}/revoke", {"reason": reason}, intent
        )
    return dict(result)


def register_dataset(
    root: Path,
    name: str,
    file: Path,
    *,
    target: str,
    column_types: dict[str, ColumnType] | None = None,
    missing: dict[str, tuple[str, ...]] | None = None,
    ignore: tuple[str, ...] = (),
    sensitivity: str = "confidential",
) -> dict[str, Any]:
    """Check every cell here, copy the file into the node home, send the metadata only.

    The coordinator records first; the node installs its copy once the act is recorded and
    undoes it otherwise, so a refused registration leaves nothing behind. (Should the node
    stop between the two, the catalogue names a dataset the node does not hold: its jobs are
    refused until the steward registers the file again under a new name.)
    """
    from kumiai.adapters import tables  # pandas: this command only

    spec, missing = parse_target(target), missing or {}
    sha256 = tables.content_hash(tables.require_file(file))
    checked = tables.check_file(
        file, tables.read_raw(file), spec, column_types or {}, ignore, missing
    )
    client, node = client_for(root)
    member = node.home.member_name
    write = node.stage_dataset(name, file)
    try:
        if tables.content_hash(write.staged) != sha256:
            raise DataError(f"data file {file} changed while kumiai was checking it; run again")
        schema = {c: t.value for c, t in checked.schema.items()}
        body = {
            "name": name,
            "target": str(spec),
            "schema": schema,
            "rows": checked.rows,
            "sha256": sha256,
            "sensitivity": sensitivity,
        }
        intent = Intent(
            "dataset.registered",
            {"dataset": name, "member": member, "sha256": sha256, "rows": checked.rows},
        )
        with client:
            result, _ = run_act(client, node, member, "/datasets", body, intent)
        record = LocalDataset(
            name, write.stored, sha256, spec, checked.schema, missing, checked.rows, ignore
        )
        write.install(record)
    except BaseException:
        write.undo()
        raise
    write.finish()
    return dict(result)


# -- a member's other acts: a researcher's request and proposal, a board seat's vote --------


def _act(root: Path, path: str, body: dict[str, Any], intent_of: Any) -> dict[str, Any]:
    """One act of this node's member; `intent_of(member)` is what the member means."""
    client, node = client_for(root)
    member = node.home.member_name
    with client:
        result, _ = run_act(client, node, member, path, body, intent_of(member))
    return dict(result)


def request_data(
    root: Path,
    project: str,
    dataset: str,
    *,
    job_kinds: str = "train,evaluate",
    max_rounds: int = 50,
    expires_at: datetime,
    epsilon_cap: float | None = None,
    plain_aggregation: bool = False,
    aggregate_statistics: str = "allowed",
    min_cohort: int = 0,
    contribution_analysis: bool = False,
) -> dict[str, Any]:
    """Ask a steward for data; the node chooses the request id and signs only these terms."""
    request_id = f"req-{secrets.token_hex(4)}"
    terms = {
        "project": project,
        "dataset": dataset,
        "max_rounds": max_rounds,
        "expires_at": to_iso(expires_at),
        "epsilon_cap": epsilon_cap,
        "plain_aggregation": plain_aggregation,
        "aggregate_statistics": aggregate_statistics,
        "min_cohort": min_cohort,
        "contribution_analysis": contribution_analysis,
    }
    kinds = [k.value for k in parse_job_kinds(job_kinds)]
    return _act(
        root,
        "/requests",
        {**terms, "request_id": request_id, "job_kinds": ",".join(kinds)},
        lambda member: Intent("request.made", {**terms, "request": request_id, "job_kinds": kinds}),
    )


def propose_project(
    root: Path,
    name: str,
    *,
    purpose: str,
    title: str = "",
    members: tuple[str, ...] = (),
    theme: str | None = None,
) -> dict[str, Any]:
    """Propose a project in this node's member's name; the node signs only this purpose and,
    under `theme`, only the `project.themed` entry putting this project under that theme."""
    themed = (Intent("project.themed", {"project": name, "theme": theme}),) if theme else ()
    return _act(
        root,
        "/projects",
        {
            "name": name,
            "purpose": purpose,
            "title": title,
            "members": list(members),
            "theme": theme,
        },
        lambda member: Intent(
            "project.proposed",
            {
                "project": name,
                "purpose": purpose.strip(),
                "members": sorted({member, *members}),
            },
            then=themed,
        ),
    )


def show_motion(root: Path, motion: str) -> dict[str, Any]:
    """The motion as the coordinator shows it, checked: its stated digest must be the one
    its content hashes to (`domain.motion.shown_digest`), so what the steward reads is what
    the node pins when it votes."""
    client, _ = client_for(root)
    with client:
        shown = dict(client.get(f"/motions/{motion}"))
    if shown.get("id") != motion:
        raise StateError(f"the coordinator showed motion {shown.get('id')!r} for {motion!r}")
    shown_digest(shown)
    return shown


def vote(root: Path, motion: str, choice: str, pinned: str) -> dict[str, Any]:
    """Cast this seat's vote on the motion whose digest `pinned` is (the one `show_motion`
    showed the steward): the node signs only its own choice on exactly that content, and the
    coordinator refuses it if the motion as recorded is another."""
    picked = choice_of(choice).value
    return _act(
        root,
        f"/motions/{motion}/votes",
        {"choice": picked, "digest": pinned},
        lambda member: Intent(
            "motion.voted", {"motion": motion, "choice": picked, "digest": pinned}
        ),
    )


def rotate_key(root: Path) -> dict[str, Any]:
    """Replace this node's key: the new key waits in the home, the coordinator records the
    `member.key-rotated` entry signed with the old key, then the node puts the new one in
    place. Should the node have stopped between the two last time, the coordinator already
    takes the waiting key for this member: the node finishes by putting it in place."""
    client, node = client_for(root)
    member, old = node.home.member_name, node.public_key()
    finished = _recorded_rotation(root, member)
    if finished is not None:
        node.rotate_key()
        return finished
    new = node.next_key()
    intent = Intent(
        "member.key-rotated", {"member": member, "public_key": new, "previous_key": old}
    )
    with client:
        result, _ = run_act(
            client, node, member, f"/members/{member}/key", {"public_key": new}, intent
        )
    node.rotate_key()
    return dict(result)


def set_budget(root: Path, dataset: str, epsilon: float) -> dict[str, Any]:
    """Set a dataset's lifetime ε here first (the node's guard enforces it from now on), then
    ask the coordinator to mirror it in its catalogue and record it in the ledger: the node
    signs only a `privacy.budget-set` entry naming its own member, this dataset and exactly
    this ε, so the coordinator cannot mirror another figure under the node's signature."""
    client, node = client_for(root)
    member = node.home.member_name
    node.dataset(dataset)  # NotFound unless this node holds the dataset
    node.set_budget(dataset, epsilon)
    lifetime = node.budget(dataset).lifetime
    intent = Intent(
        "privacy.budget-set", {"dataset": dataset, "member": member, "epsilon": lifetime}
    )
    with client:
        result, _ = run_act(
            client, node, member, f"/datasets/{dataset}/budget", {"epsilon": epsilon}, intent
        )
    return dict(result)


def _recorded_rotation(root: Path, member: str) -> dict[str, Any] | None:
    """This member's record at the coordinator, if it already holds the key waiting here."""
    waiting = root / "next-key.pem"
    if not waiting.is_file():
        return None
    key = keys.private_key_from_pem(waiting.read_bytes(), str(waiting))
    with keyed_client(root, key) as client:
        try:
            if client.get("/whoami").get("member") != member:
                return None
        except Unauthenticated:  # the waiting key is not known there: rotate afresh
            return None
        return next(m for m in client.get("/members") if m["name"] == member)


def keyed_client(root: Path, key: Any) -> CoordinatorClient:
    """A client to the pinned coordinator signing with `key` (the waiting key, say)."""
    pin = _pinned(root)
    return CoordinatorClient(pin["url"], ca_cert=root / PINNED_CA, key=key)
