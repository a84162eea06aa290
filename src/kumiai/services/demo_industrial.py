"""The industrial demo: four factories predict machine failures together (docs/industrial.md).

Built only through the public services, as `kumiai demo` is (services.demo): the factories
of the AI4I data (services.industrial) join, register their machine logs and sign
agreements that allow `train,evaluate,statistics` under an ε cap and a minimum cohort; one
agreement goes out as an ODRL policy and comes back identical; a DP analytics query; a
federated MLP with class weights at ε=1; personalisation at each site; every factory's
own-test-row comparison and how many gain; the model audited at the nodes and its card;
the ledger witnessed and verified offline.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kumiai.domain.analysis import COUNT, CROSSTAB, HISTOGRAM, MEAN, TARGET, Query, make_analysis
from kumiai.domain.audit import AuditReport
from kumiai.domain.errors import InvalidInput
from kumiai.domain.metrics import SiteScore, detection_metrics
from kumiai.domain.model_card import card_markdown
from kumiai.domain.personalisation import sites_gaining
from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import list_agreements
from kumiai.services.analysis import AnalysisOutcome, analyse
from kumiai.services.baselines import local_only
from kumiai.services.demo import DemoConsortium
from kumiai.services.industrial import IGNORED, build_factory_consortium
from kumiai.services.model_audit import Audit, audit_model
from kumiai.services.model_cards import model_card
from kumiai.services.odrl import ImportedAgreement, export_odrl, import_odrl
from kumiai.services.personalise import personalise
from kumiai.services.training import TrainingOutcome, TrainingProgress, train
from kumiai.services.transparency import export_ledger, verify_ledger, witness_all

EPSILON_CAP = 3.0  # each agreement: the analysis's ε=1, the job's ε=1, room to fine-tune
LIFETIME_EPSILON = 5.0  # each factory steward's lifetime budget for its log
MIN_COHORT = 20  # no released count may describe fewer machines than this
# `Type` (the product quality variant L/M/H) stays in the logs: the cross-tab reads it.
# Each factory makes one variant, so as a feature it tells the model the factory's kind.
KEPT = tuple(c for c in IGNORED if c != "Type")
ANALYSIS_EPSILON = 1.0  # split evenly over the queries below
QUERIES = (
    Query(COUNT),
    Query(MEAN, "Torque [Nm]", low=0.0, high=100.0),
    Query(HISTOGRAM, "Tool wear [min]", low=0.0, high=250.0, bins=10),
    Query(CROSSTAB, "Type", TARGET, levels=(("L", "M", "H"), ("0", "1"))),
)
# The MLP with failures weighted tenfold, at ε=1 with the private settings `kumiai bench
# industrial` tunes for it: one epoch of large lots (512) a round, clipped loosely (20) so
# that a failure's weighted gradient keeps its pull, and a moderate step.
DEMO_SETTINGS = TrainingSettings(
    strategy="fedavg",
    model="mlp",
    rounds=30,
    local_epochs=1,
    learning_rate=0.2,
    batch_size=512,
    l2=1e-4,
    clipping_norm=20.0,
    positive_weight=10.0,
    epsilon=1.0,
)
QUICK_ROUNDS = 3  # `--quick`: the same story with a 3-round job (tests, a first look)


@dataclass(frozen=True)
class SiteGain:
    """One factory on its own test rows: alone, federated and personalised (PR-AUC)."""

    dataset: str
    test_rows: int
    failures: int
    local: float | None
    federated: float | None
    personalised: float | None
    gains: bool  # the best consortium model is at least as good as the factory alone


@dataclass
class IndustrialReport:
    demo: DemoConsortium
    odrl: ImportedAgreement  # one agreement, exported as ODRL and imported back
    policy: Path  # where that policy was written
    analysis: AnalysisOutcome
    outcome: TrainingOutcome
    gains: list[SiteGain]
    sites_gaining: int
    audit: Audit
    card: dict[str, Any]
    card_path: Path  # the card, as Markdown
    ledger: AuditReport
    export: Path
    personalise_refused: str = ""  # the coordinator's reason, if no site could fine-tune
    personalise_refusals: dict[str, str] = field(default_factory=dict)  # dataset -> node's


def _pr_auc(score: SiteScore | None) -> float | None:
    return None if score is None else detection_metrics(score)["pr_auc"]


def site_gains(
    local: dict[str, SiteScore], federated: dict[str, SiteScore], own: dict[str, SiteScore]
) -> list[SiteGain]:
    """Each factory's row of the per-site table, gaining by kumiai.domain's rule."""
    rows = []
    for dataset, alone in sorted(local.items()):
        pr = {k: _pr_auc(s.get(dataset)) for k, s in (("fed", federated), ("own", own))}
        gains = sites_gaining({dataset: _pr_auc(alone)}, [{dataset: v} for v in pr.values()])
        rows.append(
            SiteGain(
                dataset,
                alone.examples,
                int(alone.hist_pos[-1].sum()),
                _pr_auc(alone),
                pr["fed"],
                pr["own"],
                gains == 1,
            )
        )
    return rows


def _odrl_round_trip(demo: DemoConsortium, folder: Path) -> tuple[ImportedAgreement, Path]:
    """The first factory's agreement out as an ODRL 2.2 policy file, and read back."""
    agreement = min(list_agreements(demo.consortium, demo.project), key=lambda a: a.dataset)
    path = folder / f"{agreement.id}.odrl.json"
    policy = export_odrl(demo.consortium, agreement.id)
    path.write_text(json.dumps(policy, indent=2, ensure_ascii=False) + "\n")
    return import_odrl(demo.consortium, path.read_bytes()), path


def run_industrial_demo(
    home: Path,
    settings: TrainingSettings = DEMO_SETTINGS,
    progress: TrainingProgress | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> IndustrialReport:
    """Build, analyse, train, personalise, compare, audit; then witness and verify the ledger.

    `step` is told what starts next (the CLI prints it), since some steps take a while.
    """
    step("the factories join, register their logs, and their stewards sign")
    demo = build_factory_consortium(
        home,
        epsilon_cap=EPSILON_CAP,
        lifetime_epsilon=LIFETIME_EPSILON,
        ignore=KEPT,
        themed=True,
        job_kinds="train,evaluate,statistics",
        min_cohort=MIN_COHORT,
    )
    consortium = demo.consortium
    outputs = home / "outputs"
    outputs.mkdir()
    imported, policy = _odrl_round_trip(demo, outputs)
    step("DP analytics across the factories")
    analysis = analyse(consortium, demo.project, make_analysis(list(QUERIES), ANALYSIS_EPSILON))
    step("federated training")
    outcome = train(consortium, demo.project, settings, progress)
    step("each factory trains alone on its own rows (the yardstick)")
    # Without DP (full-batch L-BFGS): a factory's own model of its own rows releases nothing,
    # so this is what it really weighs joining against.
    local = local_only(list(demo.sites.values()), replace(settings, epsilon=None))
    step("personalisation at each factory's node")
    refused, refusals, own = "", {}, {}
    try:
        done = personalise(consortium, outcome.model_id)
        own, refusals = done.scores, done.refused
    except InvalidInput as exc:  # e.g. a model trained under DP, before DP fine-tuning
        refused = str(exc)
    gains = site_gains(local, outcome.scores, own)
    step("the model audited at every node, and its card")
    audit = audit_model(consortium, outcome.model_id)
    card = model_card(consortium, outcome.model_id)
    card_path = outputs / f"{outcome.model_id}-card.md"
    card_path.write_text(card_markdown(card))
    step("every node witnesses the ledger; verified offline")
    witness_all(consortium)
    ledger = verify_ledger(consortium)
    export = outputs / "ledger-export.jsonl"
    export_ledger(consortium, export)
    return IndustrialReport(
        demo,
        imported,
        policy,
        analysis,
        outcome,
        gains,
        sum(g.gains for g in gains),
        audit,
        card,
        card_path,
        ledger,
        export,
        refused,
        refusals,
    )
