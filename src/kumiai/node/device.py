"""A user's device in the personal-agent setting: a node whose member is one person.

The device is a node home like a silo's (`NodeHome`: its own Ed25519 key, its agreements,
its revocations, its spend log), under the run's device root, one folder per user. Its
user's profile (the FCF user factors and bias) is one small file, `profile.npz`, that is
written and read here only and never sent: a round returns the change to the item side
alone, clipped to the job's norm before it leaves (user-level DP-FedAvg: the coordinator
adds the noise to the sum).

Before it works the device checks its own consent, as a silo checks its steward's
agreement: the user's signed agreement for the project, not revoked, not expired
(`domain.agreement.standing_refusal`). Revoking it stops the device at its next sampling.
Each round it takes part in is recorded in its spend log (`node.spendlog.SpendLog`) before
the update leaves, so the user's ε is counted across every project that used the device.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.adapters.models.fcf import FCF, FCFSettings
from kumiai.adapters.models.interface import FloatArray, IntArray
from kumiai.domain import keys
from kumiai.domain.agreement import (
    AgreementTerms,
    SignedAgreement,
    sign_agreement,
    standing_refusal,
)
from kumiai.domain.clock import to_iso
from kumiai.domain.guardrails import (
    Candidate,
    Guarded,
    Policy,
    genres_that_drove,
    guard,
    quiet_hours_from,
)
from kumiai.domain.job import JobKind
from kumiai.domain.ranking import score_user
from kumiai.domain.user_dp import clip_update
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog

RATINGS = "ratings"
"""The one dataset a device holds: its user's own ratings."""

PROFILE = "profile.npz"
POLICY = "policy.json"
SUGGESTED = "suggested.jsonl"
NEIGHBOURS = 3
OWN_RATINGS = "ratings.npz"


@dataclass(frozen=True)
class DeviceRound:
    """What one sampled device sends back: its clipped item-side update, or its refusal."""

    update: list[FloatArray] | None
    refusal: str | None = None


class Device:
    """One user's device home: identity, consent, profile and spend log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = NodeHome(root)

    def join(self, user: str, coordinator_key: str = "") -> str:
        """Make the device's own key and identity (once); returns its public key."""
        return self.home.create(user, "device", keys.new_private_key(), coordinator_key)

    @property
    def user(self) -> str:
        return self.home.member_name

    # -- consent -------------------------------------------------------------------------
    def consent(
        self,
        *,
        project: str,
        purpose: str,
        epsilon_cap: float,
        max_rounds: int,
        now: datetime,
        days: int = 365,
    ) -> SignedAgreement:
        """The user signs, on their device, their consent for one project (an agreement)."""
        terms = AgreementTerms(
            agreement_id=f"consent-{project}-{self.user}",
            request_id=f"consent-{project}",
            project=project,
            dataset=RATINGS,
            steward=self.user,
            purpose=purpose,
            job_kinds=(JobKind.TRAIN,),
            max_rounds=max_rounds,
            expires_at=now + timedelta(days=days),
            signed_at=now,
            epsilon_cap=epsilon_cap,
        )
        signed = sign_agreement(terms, self.home.private_key())
        self.home.save_agreement(signed)
        return signed

    def revoke(self, agreement_id: str, *, now: datetime, reason: str = "") -> None:
        self.home.revoke(agreement_id, to_iso(now), reason or "revoked by the user")

    def consent_for(self, project: str) -> SignedAgreement | None:
        mine = [a for a in self.home.agreements() if a.terms.project == project]
        return max(mine, key=lambda a: a.terms.signed_at) if mine else None

    def refusal(self, project: str, now: datetime) -> str | None:
        """Why this device does not take part in `project` now, or None."""
        return standing_refusal(
            self.consent_for(project),
            project=project,
            dataset=RATINGS,
            steward=self.user,
            steward_keys=self.home.steward_keys(),
            revoked=self.home.revoked(),
            now=now,
            missing=f"; the user has not consented (kumiai agent consent {self.user})",
        )

    # -- the profile, which never leaves ------------------------------------------------
    def load_profile(self, model: FCF) -> bool:
        path = self.root / PROFILE
        if not path.is_file():
            return False
        with np.load(path) as stored:
            model.local_arrays = [stored["factor"], stored["bias"]]
        return True

    def save_profile(self, model: FCF) -> None:
        """Replaced whole (a reader never sees half a file) but not fsynced: the profile is
        re-solved in closed form from the user's ratings whenever it is lost."""
        import io
        import os

        buffer = io.BytesIO()
        factor, bias = model.local_arrays
        np.savez(buffer, factor=factor, bias=bias)
        partial = self.root / f"{PROFILE}.partial"
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, self.root / PROFILE)

    # -- privacy spend -------------------------------------------------------------------
    def spend_log(self) -> SpendLog:
        return SpendLog(self.home, RATINGS)

    # -- one round -----------------------------------------------------------------------
    def train_round(
        self,
        *,
        job: str,
        project: str,
        round_: int,
        item_arrays: list[FloatArray],
        settings: FCFSettings,
        clipping_norm: float | None,
        privacy: dict[str, Any] | None,
        now: datetime,
    ) -> DeviceRound:
        """Check consent, solve the profile, and return the clipped item-side update.

        `privacy` (user-level DP): the job's planned ε and δ, and the ε spent once this
        round is released; the device records it before its update leaves.
        """
        if (refused := self.refusal(project, now)) is not None:
            return DeviceRound(None, refused)
        consent = self.consent_for(project)
        assert consent is not None  # refusal() said it stands
        if round_ > consent.terms.max_rounds:
            return DeviceRound(
                None, f"round {round_} is past the {consent.terms.max_rounds} the user allowed"
            )
        if privacy is not None:
            log = self.spend_log()
            if job not in log.view().jobs:
                decision = log.reserve(
                    job=job,
                    project=project,
                    planned=float(privacy["planned"]),
                    delta=float(privacy["delta"]),
                    agreement_cap=consent.terms.epsilon_cap,
                    details={"delta": float(privacy["delta"]), "level": "user"},
                )
                if not decision.allowed:
                    return DeviceRound(None, decision.reason)
            log.spend(job=job, round_=round_, epsilon=float(privacy["spent"]))
        elif consent.terms.epsilon_cap is not None:
            return DeviceRound(None, "the user consented only to training with user-level DP")
        own = self.ratings()
        model = FCF.from_arrays(item_arrays, settings)
        update = model.update(own["train_items"], own["train_ratings"])
        self.save_profile(model)
        if clipping_norm is None:
            return DeviceRound(update)
        return DeviceRound(clip_update(update, clipping_norm)[0])

    # -- its own ratings -----------------------------------------------------------------
    def store_ratings(
        self, train: tuple[IntArray, FloatArray], test: tuple[IntArray, FloatArray], times: IntArray
    ) -> None:
        """The user's ratings, on the device: training (earlier) and test (later) parts."""
        import io

        buffer = io.BytesIO()
        np.savez(
            buffer,
            train_items=train[0],
            train_ratings=train[1],
            test_items=test[0],
            test_ratings=test[1],
            times=times,
        )
        write_atomic(self.root / OWN_RATINGS, buffer.getvalue())

    def ratings(self) -> dict[str, Any]:
        with np.load(self.root / OWN_RATINGS) as stored:
            return {name: stored[name] for name in stored.files}

    def fitted(self, item_arrays: list[FloatArray], settings: FCFSettings) -> FCF:
        """The model for this user: the item side given, the profile solved here."""
        own = self.ratings()
        model = FCF.from_arrays(item_arrays, settings)
        model.solve_user(own["train_items"], own["train_ratings"])
        return model

    def evaluate(self, item_arrays: list[FloatArray], settings: FCFSettings) -> dict[str, float]:
        """This user's test scores as sums (squared error, counts, NDCG@10, hits@10): only
        these aggregates leave the device."""
        own = self.ratings()
        model = self.fitted(item_arrays, settings)
        return score_user(
            model.predict(np.arange(model.n_items)),
            own["train_items"],
            own["test_items"],
            own["test_ratings"],
        )

    # -- suggestions, on the device --------------------------------------------------------
    def set_policy(
        self, *, threshold: float, blocked_genres: frozenset[str], max_per_day: int
    ) -> Policy:
        """The user's own rules; quiet hours are always taken from their timestamps."""
        policy = Policy(threshold, blocked_genres, frozenset(), max_per_day)
        write_json_atomic(self.root / POLICY, policy.as_dict())
        return self.policy()

    def policy(self) -> Policy:
        stored: dict[str, Any] = {}
        if (self.root / POLICY).is_file():
            stored = json.loads((self.root / POLICY).read_text())
        return Policy(
            threshold=float(stored.get("threshold", Policy.threshold)),
            blocked_genres=frozenset(stored.get("blocked_genres", ())),
            quiet_hours=quiet_hours_from(self.ratings()["times"].tolist()),
            max_per_day=int(stored.get("max_per_day", Policy.max_per_day)),
        )

    def suggested_on(self, day: str) -> int:
        path = self.root / SUGGESTED
        if not path.is_file():
            return 0
        return sum(1 for line in path.read_text().splitlines() if json.loads(line)["day"] == day)

    def suggest(
        self,
        item_arrays: list[FloatArray],
        settings: FCFSettings,
        item_genres: list[tuple[str, ...]],
        *,
        now: datetime,
    ) -> tuple[Guarded, Policy, list[dict[str, Any]]]:
        """Suggestions under the user's policy, each with the user's own highly rated items
        nearest to it in item-embedding space and the genres that drove it. What is
        suggested is logged here, for the daily limit; nothing of it leaves the device."""
        own = self.ratings()
        model = self.fitted(item_arrays, settings)
        scores = model.predict(np.arange(model.n_items))
        rated = np.concatenate([own["train_items"], own["test_items"]])
        unrated = np.ones(model.n_items, dtype=bool)
        unrated[rated] = False
        order = np.flatnonzero(unrated)
        order = order[np.argsort(-scores[order], kind="stable")]
        ranked = [Candidate(int(i), float(scores[i]), tuple(item_genres[i])) for i in order]
        policy = self.policy()
        day = now.strftime("%Y-%m-%d")
        guarded = guard(ranked, policy, now=now, already_today=self.suggested_on(day))
        ratings = np.concatenate([own["train_ratings"], own["test_ratings"]])
        liked = rated[ratings >= max(4.0, float(np.percentile(ratings, 75)))]
        if len(liked) == 0:
            liked = rated[ratings >= ratings.max()]
        pairs = [(item_genres[int(i)], float(r)) for i, r in zip(rated, ratings, strict=True)]
        explanations = [
            {
                "because_you_liked": _nearest(model.arrays[0], c.item, liked),
                "genres": genres_that_drove(c.genres, pairs),
            }
            for c in guarded.suggestions
        ]
        if guarded.suggestions:
            with (self.root / SUGGESTED).open("a") as log:
                for c in guarded.suggestions:
                    log.write(json.dumps({"day": day, "item": c.item}) + "\n")
        return guarded, policy, explanations


def _nearest(factors: FloatArray, item: int, liked: IntArray) -> list[int]:
    """The liked items whose embeddings are nearest (cosine) to `item`'s."""
    vectors = factors[liked]
    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(factors[item]) or 1.0)
    similarity = vectors @ factors[item] / np.where(norms > 0, norms, 1.0)
    return [int(liked[k]) for k in np.argsort(-similarity, kind="stable")[:NEIGHBOURS]]


def round_config(
    *,
    job: str,
    project: str,
    round_: int,
    settings: FCFSettings,
    clipping_norm: float | None,
    privacy: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the coordinator sends a sampled device besides the item side: flat values only,
    so the same dictionary travels as a Flower ConfigRecord or as a function's argument."""
    from dataclasses import asdict

    return {
        "job": job,
        "project": project,
        "round": round_,
        "settings": json.dumps(asdict(settings), sort_keys=True),
        "clipping-norm": -1.0 if clipping_norm is None else float(clipping_norm),
        "privacy": json.dumps(privacy, sort_keys=True) if privacy is not None else "",
    }


def device_round(root: Path, item_arrays: list[FloatArray], config: dict[str, Any]) -> DeviceRound:
    """One sampled device's round, from what the coordinator sent (either engine)."""
    from kumiai.domain.clock import utc_now

    clip = float(config["clipping-norm"])
    privacy = str(config.get("privacy") or "")
    return Device(root).train_round(
        job=str(config["job"]),
        project=str(config["project"]),
        round_=int(config["round"]),
        item_arrays=item_arrays,
        settings=FCFSettings(**json.loads(str(config["settings"]))),
        clipping_norm=None if clip < 0 else clip,
        privacy=json.loads(privacy) if privacy else None,
        now=utc_now(),
    )
