"""The port: everything the coordinator may ask of a member's node, and nothing more.

The coordinator's services reach a node only through `NodePort`, so that a network can
stand behind it when members sit in other organisations. Whatever needs the member's key
happens inside the node: the port hands back signatures, never the key. `LocalNode` is the
port on one machine, a function call into the node's own home.

This module loads nothing heavy: the node's worker (pandas) and ClientApp (Flower) are
imported only by the operations that need them, so read-only commands stay fast.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.adapters.files import write_atomic
from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement, sign_agreement
from kumiai.domain.budget import BudgetView
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import Entry, SignedEntry, TreeHead, sign_entry
from kumiai.domain.split import SiteSplit
from kumiai.domain.training import TrainingSettings
from kumiai.node import witnessing
from kumiai.node.home import LocalDataset, NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.node.witnessing import Witnessed

if TYPE_CHECKING:
    import numpy as np
    from flwr.clientapp import ClientApp
    from flwr.clientapp.typing import Mod
    from numpy.typing import NDArray

    from kumiai.adapters.models.interface import Model
    from kumiai.domain.metrics import SiteScore
    from kumiai.domain.preprocessing import FeaturePlan
    from kumiai.node.device import Device

__all__ = [
    "LocalDataset",
    "LocalNode",
    "NodePort",
    "SiteSplit",
    "StagedDataset",
    "device",
    "local_dp_sgd",
    "local_sgd",
    "simulation_client_app",
]


class StagedDataset(Protocol):
    """A dataset file copied to its node but not yet in use: installed or undone later."""

    @property
    def staged(self) -> Path: ...

    @property
    def stored(self) -> Path: ...

    def install(self, record: LocalDataset) -> None: ...

    def undo(self) -> None: ...

    def finish(self) -> None: ...


class NodePort(Protocol):
    """What the coordinator's side needs from one member's node."""

    @property
    def address(self) -> str:
        """Where the coordinator reaches the node (on one machine, its home directory)."""
        ...

    # -- identity and signatures ----------------------------------------------------------
    def join(self, name: str, kind: str, coordinator_key: str) -> str:
        """Create the node's identity with a key it makes itself; returns the public key."""
        ...

    def public_key(self) -> str: ...

    def supernode_key(self) -> str:
        """The public half of the node's SuperNode authentication key (OpenSSH line), made
        in the node home on first use; the SuperLink admits only registered ones."""
        ...

    def steward_keys(self) -> tuple[str, ...]:
        """Every public key the member has held, newest first."""
        ...

    def next_key(self) -> str:
        """Make (or return) a key waiting to replace the current one; its public key."""
        ...

    def rotate_key(self) -> str:
        """Put the waiting key in place; the old one is kept aside. Returns the new public key."""
        ...

    def sign_entry(self, entry: Entry) -> SignedEntry:
        """The member signs one of its own acts for the ledger."""
        ...

    def sign_agreement(self, terms: AgreementTerms) -> SignedAgreement:
        """The steward signs data-use terms for one of its datasets."""
        ...

    # -- datasets ------------------------------------------------------------------------
    def stage_dataset(self, name: str, file: Path) -> StagedDataset: ...

    def dataset(self, name: str) -> LocalDataset:
        """The node's record of a dataset (where its rows are, their schema and count)."""
        ...

    def split(self, dataset: str, settings: TrainingSettings) -> SiteSplit:
        """A site's rows split into train and test: yardsticks on one machine only."""
        ...

    # -- agreements and revocations ------------------------------------------------------
    def store_agreement(self, agreement: SignedAgreement) -> None: ...

    def revoke(self, agreement_id: str, revoked_at: str, reason: str) -> None: ...

    def revoked(self) -> frozenset[str]: ...

    # -- privacy budgets -----------------------------------------------------------------
    def set_budget(self, dataset: str, epsilon: float) -> None: ...

    def budget(self, dataset: str) -> BudgetView:
        """Spent and committed ε of a dataset, read from the node's signed spend log."""
        ...

    def release_privacy(self, dataset: str, job: str) -> bool:
        """The job is over: stop holding the ε it reserved but did not spend."""
        ...

    def charge_contribution(
        self,
        dataset: str,
        *,
        project: str,
        model: str,
        released_job: str,
        retrainings: int,
        charge_id: str,
    ) -> tuple[bool, str, float]:
        """Pay, at the node, the extra ε of retraining a DP model's coalitions `retrainings`
        more times: (allowed, reason, ε charged). The node computes the ε itself from its own
        spend log and checks its own agreement; a charge id already paid is not paid again."""
        ...

    def personalise(
        self,
        dataset: str,
        *,
        project: str,
        model: str,
        settings: TrainingSettings,
        plan: "FeaturePlan",
        parameters: bytes,
        epochs: int,
        job: str = "",
        charge_id: str = "",
        proximal_mu: float | None = None,
    ) -> tuple[bool, str, "SiteScore | None"]:
        """Fine-tune a released model on the dataset's training rows, under the node's own
        agreement: (allowed, reason, the personalised model's scores on its test rows). The
        personalised parameters stay in the node's home; only the aggregate scores return.
        A DP-SGD model (`job`: the job that trained it) is fine-tuned with DP-SGD, its extra
        ε charged first in the node's own log under `charge_id`. `proximal_mu` (a model
        trained without DP): fit to the site's optimum with that pull back to the model."""
        ...

    def admit_analysis(self, dataset: str, job: str) -> tuple[bool, str, str]:
        """Check a signed statistics job (`job`: its JSON) as the guard would, refuse a dataset
        below the minimum cohort, reserve its ε: (allowed, reason, its masking key signed by
        the member, `SignedMaskingKey` JSON, or '')."""
        ...

    def release_analysis(
        self,
        dataset: str,
        job: str,
        peers: dict[str, str],
        evidence: Sequence[dict[str, Any]] = (),
    ) -> tuple[bool, str, list[int]]:
        """Spend the reservation, draw the noise at the node, and return the noisy vector,
        masked for the participants `peers` (dataset -> signed masking key) under secure
        aggregation, once the node has checked each key against `evidence`: the peers'
        identity entries with inclusion proofs under the head it witnessed
        (kumiai.domain.peer_trust)."""
        ...

    def audit_model(
        self,
        dataset: str,
        *,
        project: str,
        settings: TrainingSettings,
        plan: "FeaturePlan",
        parameters: bytes,
        attribute: str | None,
    ) -> tuple[bool, str, dict[str, Any] | None]:
        """Measure a released model on the dataset's rows for its model card, under the
        node's own agreement: (allowed, reason, aggregates only; kumiai.node.auditing)."""
        ...

    # -- witnessing the ledger -----------------------------------------------------------
    def last_witnessed(self) -> TreeHead | None: ...

    def witness(self, head: TreeHead, proof: list[bytes]) -> Witnessed:
        """Check a new head against the last one; cosign and remember it if it extends it."""
        ...

    def refusal_copies(self) -> list[str]:
        """The node's signed copies of refusals not yet seen in a head it cosigned."""
        ...

    def refusal_witnessed(self, job: str, dataset: str) -> None: ...

    # -- federation ----------------------------------------------------------------------
    def client_app(self, dataset: str, mods: Sequence["Mod"] = ()) -> "ClientApp":
        """The node's own ClientApp (the guard first) serving one of its datasets."""
        ...


class LocalNode:
    """The port on one machine: the node's home directory, reached by function calls."""

    def __init__(self, root: Path) -> None:
        self.home = NodeHome(root)
        self._key: Ed25519PrivateKey | None = None
        self._member: str | None = None

    @property
    def address(self) -> str:
        return str(self.home.root)

    def _private_key(self) -> Ed25519PrivateKey:
        """Read once per process: a ledger full of one member's acts signs fast."""
        if self._key is None:
            self._key = self.home.private_key()
        return self._key

    @property
    def _member_name(self) -> str:
        if self._member is None:
            self._member = self.home.member_name
        return self._member

    @property
    def _next_key_file(self) -> Path:
        return self.home.root / "next-key.pem"

    # -- identity and signatures ----------------------------------------------------------
    def join(self, name: str, kind: str, coordinator_key: str) -> str:
        key = keys.new_private_key()
        public = self.home.create(name, kind, key, coordinator_key)
        self._key, self._member = key, name
        return public

    def public_key(self) -> str:
        return self.home.public_key()

    def supernode_key(self) -> str:
        return self.home.supernode_key()

    def steward_keys(self) -> tuple[str, ...]:
        return self.home.steward_keys()

    def next_key(self) -> str:
        path = self._next_key_file
        if not path.is_file():
            write_atomic(path, keys.private_key_to_pem(keys.new_private_key()), mode=0o600)
        return keys.public_key_b64(keys.private_key_from_pem(path.read_bytes(), str(path)))

    def rotate_key(self) -> str:
        path = self._next_key_file
        if not path.is_file():
            raise InvalidInput(f"no new key waits at {path}; ask the node for one first")
        public = self.home.rotate_key(keys.private_key_from_pem(path.read_bytes(), str(path)))
        path.unlink()
        self._key = None
        return public

    def sign_entry(self, entry: Entry) -> SignedEntry:
        member = self._member_name
        if entry.actor != member:
            raise InvalidInput(f"the node of {member!r} signs its own acts, not {entry.actor!r}'s")
        return sign_entry(entry, self._private_key())

    def sign_agreement(self, terms: AgreementTerms) -> SignedAgreement:
        member = self._member_name
        if terms.steward != member:
            raise InvalidInput(f"the node of {member!r} signs only its own agreements")
        self.home.dataset(terms.dataset)  # NotFound unless the dataset is this node's
        return sign_agreement(terms, self._private_key())

    # -- datasets ------------------------------------------------------------------------
    def stage_dataset(self, name: str, file: Path) -> StagedDataset:
        from kumiai.node.datasetwrite import DatasetWrite

        return DatasetWrite(self.home, name, file)

    def dataset(self, name: str) -> LocalDataset:
        return self.home.dataset(name)

    def split(self, dataset: str, settings: TrainingSettings) -> SiteSplit:
        from kumiai.node.worker import NodeWorker

        return NodeWorker(self.home.root).split(dataset, settings)

    # -- agreements and revocations ------------------------------------------------------
    def store_agreement(self, agreement: SignedAgreement) -> None:
        self.home.save_agreement(agreement)

    def revoke(self, agreement_id: str, revoked_at: str, reason: str) -> None:
        self.home.revoke(agreement_id, revoked_at, reason)

    def revoked(self) -> frozenset[str]:
        return self.home.revoked()

    # -- privacy budgets -----------------------------------------------------------------
    def set_budget(self, dataset: str, epsilon: float) -> None:
        SpendLog(self.home, dataset).set_lifetime(epsilon)

    def budget(self, dataset: str) -> BudgetView:
        return SpendLog(self.home, dataset).view()

    def release_privacy(self, dataset: str, job: str) -> bool:
        return SpendLog(self.home, dataset).release(job)

    def charge_contribution(
        self,
        dataset: str,
        *,
        project: str,
        model: str,
        released_job: str,
        retrainings: int,
        charge_id: str,
    ) -> tuple[bool, str, float]:
        from kumiai.node.charging import charge_contribution

        return charge_contribution(
            self.home,
            dataset,
            project=project,
            model=model,
            released_job=released_job,
            retrainings=retrainings,
            charge_id=charge_id,
        )

    def personalise(
        self,
        dataset: str,
        *,
        project: str,
        model: str,
        settings: TrainingSettings,
        plan: "FeaturePlan",
        parameters: bytes,
        epochs: int,
        job: str = "",
        charge_id: str = "",
        proximal_mu: float | None = None,
    ) -> tuple[bool, str, "SiteScore | None"]:
        from kumiai.node.personalising import personalise

        return personalise(
            self.home,
            dataset,
            project=project,
            model=model,
            settings=settings,
            plan=plan,
            parameters=parameters,
            epochs=epochs,
            job=job,
            charge_id=charge_id,
            proximal_mu=proximal_mu,
        )

    def admit_analysis(self, dataset: str, job: str) -> tuple[bool, str, str]:
        from kumiai.node.analysing import admit_analysis

        return admit_analysis(self.home, dataset, job)

    def release_analysis(
        self,
        dataset: str,
        job: str,
        peers: dict[str, str],
        evidence: Sequence[dict[str, Any]] = (),
    ) -> tuple[bool, str, list[int]]:
        from kumiai.node.analysing import release_analysis

        return release_analysis(self.home, dataset, job, peers, evidence)

    def audit_model(
        self,
        dataset: str,
        *,
        project: str,
        settings: TrainingSettings,
        plan: "FeaturePlan",
        parameters: bytes,
        attribute: str | None,
    ) -> tuple[bool, str, dict[str, Any] | None]:
        from kumiai.node.auditing import audit

        return audit(
            self.home,
            dataset,
            project=project,
            settings=settings,
            plan=plan,
            parameters=parameters,
            attribute=attribute,
        )

    # -- witnessing the ledger -----------------------------------------------------------
    def last_witnessed(self) -> TreeHead | None:
        return witnessing.last_witnessed(self.home)

    def witness(self, head: TreeHead, proof: list[bytes]) -> Witnessed:
        return witnessing.observe(self.home, head, proof)

    def refusal_copies(self) -> list[str]:
        return self.home.refusal_copies()

    def refusal_witnessed(self, job: str, dataset: str) -> None:
        self.home.refusal_witnessed(job, dataset)

    # -- federation ----------------------------------------------------------------------
    def client_app(self, dataset: str, mods: Sequence["Mod"] = ()) -> "ClientApp":
        from kumiai.node.clientapp import build_client_app
        from kumiai.node.worker import NodeWorker

        root = self.home.root
        return build_client_app(NodeWorker, lambda _: (root, dataset), mods)


def simulation_client_app(
    sites: Sequence[tuple[NodePort, str]], mods: Sequence["Mod"] = ()
) -> "ClientApp":
    """One ClientApp for the simulation engine: partition i runs as the node of sites[i].

    Only nodes on this machine can be simulated; across organisations each member runs
    its own ClientApp on its own SuperNode.
    """
    from kumiai.adapters.flower.simulation import PartitionLocator
    from kumiai.node.clientapp import build_client_app
    from kumiai.node.worker import NodeWorker

    homes = []
    for node, dataset in sites:
        if not isinstance(node, LocalNode):
            raise InvalidInput(f"the node at {node.address} is not on this machine to simulate")
        homes.append((node.address, dataset))
    return build_client_app(NodeWorker, PartitionLocator(homes), mods)


def local_sgd(
    model: "Model",
    X: "NDArray[np.float64]",
    y: "NDArray[np.int64]",
    settings: TrainingSettings,
    dataset: str,
    server_round: int,
) -> None:
    """The nodes' own local training step, for retraining coalitions on one machine.

    Coalition retraining (kumiai.services.contribution) must train exactly as the nodes
    do; it borrows their step rather than copying it.
    """
    from kumiai.node.worker import local_sgd as step

    step(model, X, y, settings, dataset, server_round)


def local_dp_sgd(
    model: "Model",
    X: "NDArray[np.float64]",
    y: "NDArray[np.int64]",
    settings: TrainingSettings,
    plan: dict[str, Any],
) -> None:
    """The nodes' own DP-SGD round at a site's reserved σ, q, steps and clipping, for
    retraining a DP model's coalitions on one machine (after the nodes have paid for it)."""
    from kumiai.node.worker import private_sgd

    private_sgd(model, X, y, settings, plan)


def device(root: Path) -> "Device":
    """A user's device in the personal-agent setting (kumiai.node.device): on one machine
    a folder under the run's device root; on a phone, the same calls behind the app."""
    from kumiai.node.device import Device

    return Device(root)


def device_round(
    root: Path, item_arrays: "list[NDArray[np.float64]]", config: dict[str, Any]
) -> Any:
    """One sampled device's round, called in-process (kumiai.node.device.device_round)."""
    from kumiai.node.device import device_round as run_round

    return run_round(root, item_arrays, config)


def device_client_app(devices: Path) -> "ClientApp":
    """The devices' ClientApp for Flower's simulation engine: SuperNode partition i is the
    device in `devices/NNNNNNN` (i, seven digits)."""
    from kumiai.adapters.flower.cross_device import device_client_app as build
    from kumiai.node.device import device_round as run_round

    def handle(index: int, item_arrays: list[Any], config: dict[str, Any]) -> Any:
        reply = run_round(devices / f"{index:07d}", item_arrays, config)
        return reply.update, reply.refusal

    return build(handle)


def round_config(**values: Any) -> dict[str, Any]:
    """What a sampled device is sent besides the item side (kumiai.node.device.round_config)."""
    from kumiai.node.device import round_config as build

    return build(**values)
