"""The node's spend log on disk: durable, tamper-evident, and serialised across processes."""

import json
import multiprocessing
import sys
import threading
from pathlib import Path

import pytest

from kumiai.domain import keys
from kumiai.domain.budget import RELEASE, RESERVE, SPEND
from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.node import spendlog
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog

DATASET = "cleveland-heart"
DETAILS = {"noise_multiplier": 1.1, "sample_rate": 0.1, "delta": 1e-5, "rounds": 3}
ALLOWED, REFUSED = 10, 20  # exit codes of a racing process


def make_node(root: Path) -> NodeHome:
    node = NodeHome(root)
    node.create(
        "cleveland", "hospital", keys.new_private_key(), keys.public_key_b64(keys.new_private_key())
    )
    return node


@pytest.fixture
def node(tmp_path: Path) -> NodeHome:
    return make_node(tmp_path / "cleveland")


def reserve(
    log: SpendLog, job: str, planned: float, project: str = "heart", cap: float | None = None
):  # type: ignore[no-untyped-def]
    return log.reserve(
        job=job, project=project, planned=planned, delta=1e-5, agreement_cap=cap, details=DETAILS
    )


def lines_of(log: SpendLog) -> list[str]:
    return log.log.read_text().splitlines()


def a_finished_job(node: NodeHome) -> SpendLog:
    """reserve 1.0, spend 0.3 / 0.6 / 0.9 over three rounds, release: five lines."""
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-1", 1.0).allowed
    for round_, epsilon in enumerate((0.3, 0.6, 0.9), start=1):
        log.spend(job="job-1", round_=round_, epsilon=epsilon)
    assert log.release("job-1")
    return log


# -- the steward's lifetime budget -------------------------------------------------------
def test_a_dataset_has_no_lifetime_budget_until_the_steward_sets_one(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert log.lifetime() is None and log.view().left is None
    log.set_lifetime(1.5)
    assert SpendLog(NodeHome(node.root), DATASET).lifetime() == 1.5
    assert log.view().left == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_lifetime_budget_must_be_positive_and_finite(node: NodeHome, bad: float) -> None:
    with pytest.raises(InvalidInput, match="epsilon_cap must be a finite number greater than 0"):
        SpendLog(node, DATASET).set_lifetime(bad)


def test_a_lifetime_budget_cannot_drop_below_what_is_spent_or_committed(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-1", 1.0).allowed
    log.spend(job="job-1", round_=1, epsilon=0.4)
    with pytest.raises(InvalidInput, match=r"spent 0\.400 and committed 0\.600.*below 1\.000"):
        log.set_lifetime(0.9)
    log.set_lifetime(1.0)
    assert log.lifetime() == 1.0


# -- durability ------------------------------------------------------------------------
def test_records_survive_reopening_the_node(node: NodeHome) -> None:
    a_finished_job(node)
    log = SpendLog(node, "other-dataset")
    assert reserve(log, "job-2", 0.5, project="lungs").allowed

    again = SpendLog(NodeHome(node.root), DATASET).view()
    job = again.jobs["job-1"]
    assert (job.reserved, job.spent, job.rounds, job.released) == (1.0, 0.9, 3, True)
    assert job.details == DETAILS and job.planned_rounds == 3
    assert again.spent == pytest.approx(0.9) and again.committed == 0.0
    other = SpendLog(NodeHome(node.root), "other-dataset").view()
    assert list(other.jobs) == ["job-2"] and other.committed == pytest.approx(0.5)


def test_each_line_is_a_signed_record_in_order(node: NodeHome) -> None:
    log = a_finished_job(node)
    docs = [json.loads(line) for line in lines_of(log)]
    assert [d["record"]["kind"] for d in docs] == [RESERVE, SPEND, SPEND, SPEND, RELEASE]
    assert [d["record"]["seq"] for d in docs] == [0, 1, 2, 3, 4]
    assert [d["record"]["epsilon"] for d in docs] == [1.0, 0.3, 0.6, 0.9, 0.9]
    public = node.steward_keys()[0]
    for doc in docs:
        assert keys.verify(public, canonical_json(doc["record"]), doc["signature"])


def test_records_signed_before_a_key_rotation_still_verify(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-1", 1.0).allowed
    node.rotate_key(keys.new_private_key())
    log.spend(job="job-1", round_=1, epsilon=0.5)
    assert SpendLog(NodeHome(node.root), DATASET).view().jobs["job-1"].spent == 0.5


# -- tampering -----------------------------------------------------------------------------
def rewrite(log: SpendLog, lines: list[str]) -> None:
    log.log.write_text("".join(line + "\n" for line in lines))


def test_a_line_re_signed_with_another_key_is_named(node: NodeHome) -> None:
    log = a_finished_job(node)
    lines = lines_of(log)
    doc = json.loads(lines[3])
    doc["record"]["epsilon"] = 0.1
    doc["signature"] = keys.sign(keys.new_private_key(), canonical_json(doc["record"]))
    lines[3] = canonical_json(doc).decode()
    rewrite(log, lines)
    with pytest.raises(InvalidInput, match=f"dataset '{DATASET}': spend log line 4 is not signed"):
        SpendLog(node, DATASET).view()


def test_an_edited_epsilon_is_named(node: NodeHome) -> None:
    log = a_finished_job(node)
    lines = lines_of(log)
    lines[1] = lines[1].replace('"epsilon":0.3', '"epsilon":0.03')
    assert lines[1] != lines_of(log)[1]
    rewrite(log, lines)
    with pytest.raises(InvalidInput, match="spend log line 2 is not signed by this node"):
        log.view()


def test_a_replayed_line_is_named(node: NodeHome) -> None:
    log = a_finished_job(node)
    lines = lines_of(log)
    rewrite(log, [*lines, lines[0]])
    with pytest.raises(InvalidInput, match="spend log line 6 does not follow the line before"):
        log.view()


def test_a_deleted_line_is_named(node: NodeHome) -> None:
    log = a_finished_job(node)
    lines = lines_of(log)
    del lines[2]
    rewrite(log, lines)
    with pytest.raises(InvalidInput, match="spend log line 3 does not follow the line before"):
        log.view()


def test_a_damaged_line_is_named(node: NodeHome) -> None:
    log = a_finished_job(node)
    lines = lines_of(log)
    lines[4] = lines[4][:-10]
    rewrite(log, lines)
    with pytest.raises(InvalidInput, match="spend log line 5 is malformed"):
        log.view()


def test_a_tampered_log_refuses_every_new_reservation_and_spend(node: NodeHome) -> None:
    """The node does not go on appending to a chain it cannot verify."""
    log = a_finished_job(node)
    lines = lines_of(log)
    rewrite(log, lines[:1] + lines[2:])
    size = log.log.stat().st_size
    with pytest.raises(InvalidInput, match="spend log line 2"):
        reserve(log, "job-2", 0.1)
    with pytest.raises(InvalidInput, match="spend log line 2"):
        log.spend(job="job-1", round_=4, epsilon=0.95)
    assert log.log.stat().st_size == size


# -- spend and release -----------------------------------------------------------------
def test_spend_without_a_reservation_is_refused(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    with pytest.raises(StateError, match="job-9 holds no privacy reservation"):
        log.spend(job="job-9", round_=1, epsilon=0.1)
    assert not log.log.exists() or lines_of(log) == []


def test_spend_after_release_is_refused(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-1", 1.0).allowed
    assert log.release("job-1")
    with pytest.raises(StateError, match="job-1 was released"):
        log.spend(job="job-1", round_=1, epsilon=0.1)
    assert len(lines_of(log)) == 2


def test_spend_above_the_reservation_is_refused(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-1", 1.0).allowed
    log.spend(job="job-1", round_=1, epsilon=0.6)
    with pytest.raises(StateError, match=r"would spend ε=1\.100, over its reservation ε=1\.000"):
        log.spend(job="job-1", round_=2, epsilon=1.1)
    log.spend(job="job-1", round_=2, epsilon=1.0)
    assert log.view().jobs["job-1"].spent == 1.0


def test_release_of_an_unknown_or_released_job_does_nothing(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    assert log.release("job-9") is False
    assert reserve(log, "job-1", 1.0).allowed
    log.spend(job="job-1", round_=1, epsilon=0.25)
    assert log.release("job-1") is True
    assert log.release("job-1") is False
    assert len(lines_of(log)) == 3
    release = json.loads(lines_of(log)[-1])["record"]
    assert release["kind"] == RELEASE and release["epsilon"] == 0.25 and release["round"] == 1


# -- reservations --------------------------------------------------------------------------
def test_reservations_against_the_lifetime_and_the_cap(node: NodeHome) -> None:
    log = SpendLog(node, DATASET)
    log.set_lifetime(1.5)
    assert reserve(log, "job-1", 1.0).allowed
    second = reserve(log, "job-2", 1.0)
    assert not second.allowed and "only 0.500 of the dataset's lifetime budget" in second.reason
    assert reserve(log, "job-1", 0.1).allowed is False
    assert log.release("job-1")
    assert reserve(log, "job-2", 1.0).allowed
    capped = reserve(log, "job-3", 0.4, project="lungs", cap=0.3)
    assert not capped.allowed and "at most 0.300 is left" in capped.reason
    assert [json.loads(line)["record"]["job"] for line in lines_of(log)] == [
        "job-1",
        "job-1",
        "job-2",
    ]


# -- concurrency -----------------------------------------------------------------------
def _race(root: str, job: str, barrier) -> None:  # type: ignore[no-untyped-def]
    """A process that reserves ε=1 on the dataset the moment every racer is ready."""
    log = SpendLog(NodeHome(Path(root)), DATASET)
    barrier.wait(timeout=60)
    decision = reserve(log, job, 1.0)
    sys.exit(ALLOWED if decision.allowed else REFUSED)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_processes_starting_together_cannot_overspend_a_dataset(
    node: NodeHome, method: str
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    SpendLog(node, DATASET).set_lifetime(1.5)
    context = multiprocessing.get_context(method)
    racers = 4
    barrier = context.Barrier(racers)
    processes = [
        context.Process(target=_race, args=(str(node.root), f"job-{i}", barrier))
        for i in range(racers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    codes = sorted(p.exitcode for p in processes)
    assert codes == [ALLOWED] + [REFUSED] * (racers - 1)
    view = SpendLog(NodeHome(node.root), DATASET).view()  # the chain verifies
    assert len(view.jobs) == 1 and view.committed == pytest.approx(1.0)
    assert view.left == pytest.approx(0.5)


def test_threads_starting_together_cannot_overspend_a_dataset(node: NodeHome) -> None:
    SpendLog(node, DATASET).set_lifetime(1.5)
    racers = 8
    barrier = threading.Barrier(racers)
    results: dict[str, bool] = {}

    def race(job: str) -> None:
        log = SpendLog(NodeHome(node.root), DATASET)
        barrier.wait(timeout=30)
        results[job] = reserve(log, job, 1.0).allowed

    threads = [threading.Thread(target=race, args=(f"job-{i}",)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results.values()) == [False] * (racers - 1) + [True]
    view = SpendLog(node, DATASET).view()
    assert len(lines_of(SpendLog(node, DATASET))) == 1
    assert view.committed == pytest.approx(1.0)


def test_concurrent_spends_of_two_jobs_keep_the_chain_intact(node: NodeHome) -> None:
    """Appends from two jobs' rounds interleave, but each sees the other's last line."""
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-a", 1.0).allowed
    assert reserve(log, "job-b", 1.0).allowed
    barrier = threading.Barrier(2)

    def rounds(job: str) -> None:
        mine = SpendLog(NodeHome(node.root), DATASET)
        barrier.wait(timeout=30)
        for round_ in range(1, 11):
            mine.spend(job=job, round_=round_, epsilon=round_ / 10)

    threads = [threading.Thread(target=rounds, args=(job,)) for job in ("job-a", "job-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    view = SpendLog(node, DATASET).view()
    assert len(lines_of(log)) == 22
    assert view.jobs["job-a"].spent == 1.0 and view.jobs["job-b"].spent == 1.0
    assert view.jobs["job-a"].rounds == 10 and view.jobs["job-b"].rounds == 10


def _spend_rounds(root: str, job: str, barrier) -> None:  # type: ignore[no-untyped-def]
    """A process that records twenty rounds of one job as fast as it can."""
    log = SpendLog(NodeHome(Path(root)), DATASET)
    barrier.wait(timeout=60)
    for round_ in range(1, 21):
        log.spend(job=job, round_=round_, epsilon=round_ / 20)


def test_two_processes_writing_at_once_never_corrupt_the_log(node: NodeHome) -> None:
    """Two writers' appends interleave line by line; the file lock keeps every line whole
    and chained to the one written just before it, by whichever process wrote it."""
    log = SpendLog(node, DATASET)
    assert reserve(log, "job-a", 1.0).allowed
    assert reserve(log, "job-b", 1.0).allowed
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    barrier = context.Barrier(2)
    writers = [
        context.Process(target=_spend_rounds, args=(str(node.root), job, barrier))
        for job in ("job-a", "job-b")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    view = SpendLog(NodeHome(node.root), DATASET).view()  # parses: every line whole, chained
    assert len(lines_of(log)) == 42
    for job in ("job-a", "job-b"):
        assert view.jobs[job].spent == 1.0 and view.jobs[job].rounds == 20
    jobs_in_order = [json.loads(line)["record"]["job"] for line in lines_of(log)[2:]]
    assert sorted(jobs_in_order) == ["job-a"] * 20 + ["job-b"] * 20


# -- lines verified once are not verified again, unless their bytes changed ---------------
def test_a_log_read_again_verifies_only_its_new_lines(
    node: NodeHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = a_finished_job(node)
    full = log.view()
    checked: list[bytes] = []
    real = keys.verify

    def counting(public: str, message: bytes, signature: str) -> bool:
        checked.append(message)
        return real(public, message, signature)

    monkeypatch.setattr(keys, "verify", counting)
    assert log.view() == full and checked == []  # nothing new: nothing verified again
    assert reserve(log, "job-2", 0.5).allowed
    log.spend(job="job-2", round_=1, epsilon=0.2)
    checked.clear()
    after = log.view()
    assert len(checked) == 1 and after.spent == pytest.approx(full.spent + 0.2)
    monkeypatch.undo()
    spendlog._VERIFIED.clear()
    assert after == SpendLog(node, DATASET).view()  # as a full, fresh parse gives


@pytest.mark.parametrize("line", [0, 3])
def test_an_early_line_edited_after_a_read_is_still_caught(node: NodeHome, line: int) -> None:
    """The verified prefix is compared byte for byte (SHA-256): an edit anywhere in it
    sends the whole log through verification again."""
    log = a_finished_job(node)
    log.view()
    lines = lines_of(log)
    doc = json.loads(lines[line])
    doc["record"]["epsilon"] = float(doc["record"]["epsilon"]) / 2
    lines[line] = json.dumps(doc)
    log.log.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=f"spend log line {line + 1} is not signed"):
        log.view()


def test_a_truncated_then_regrown_log_is_verified_from_the_start(node: NodeHome) -> None:
    log = a_finished_job(node)
    log.view()
    lines = lines_of(log)
    log.log.write_text("\n".join(lines[:2]) + "\n")  # shorter than what was verified
    assert log.view().jobs["job-1"].rounds == 1  # the whole of what is left, verified anew
    forged = json.loads(lines[2])
    forged["record"]["seq"] = 5
    log.log.write_text("\n".join([*lines[:2], json.dumps(forged)]) + "\n")
    with pytest.raises(InvalidInput, match="spend log line 3"):
        log.view()
