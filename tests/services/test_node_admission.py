"""The admission keeper reports each change once, and a failing pass never stops it."""

from typing import Any

import pytest

from kumiai.services import node_admission
from kumiai.services.node_admission import AdmissionKeeper


def test_changes_are_reported_as_they_happen_and_a_problem_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[Any] = [
        ["registered lab's SuperNode key (node 5)", "could not register x's SuperNode key: no"],
        ["could not register x's SuperNode key: no"],
        RuntimeError("SuperLink restarting"),
        RuntimeError("SuperLink restarting"),
        ["registered lab's SuperNode key (node 6)"],
        ["could not register x's SuperNode key: no"],
    ]

    def admit(consortium: object, link: object) -> list[str]:
        result = passes.pop(0)
        if isinstance(result, Exception):
            raise result
        return list(result)

    monkeypatch.setattr(node_admission, "admit_members", admit)
    said: list[str] = []
    keeper = AdmissionKeeper(object(), object(), said.append)  # type: ignore[arg-type]
    for _ in range(6):
        keeper.run_once()
    assert said == [
        "registered lab's SuperNode key (node 5)",
        "could not register x's SuperNode key: no",
        "node admission paused: SuperLink restarting",
        "registered lab's SuperNode key (node 6)",
        "could not register x's SuperNode key: no",  # it had gone away, and came back
    ]


def test_the_keeper_thread_runs_passes_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    ran = threading.Event()
    monkeypatch.setattr(node_admission, "admit_members", lambda consortium, link: ran.set() or [])
    keeper = AdmissionKeeper(object(), object(), print, every=0.01).start()  # type: ignore[arg-type]
    assert ran.wait(5)
    keeper.stop()
    assert not keeper._thread.is_alive()


def test_the_superlink_is_asked_when_a_key_changed_or_a_recheck_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = {"st-mary": "K1"}
    monkeypatch.setattr(node_admission, "node_keys", lambda consortium: dict(held))
    monkeypatch.setattr(node_admission, "admit_members", lambda consortium, link: [])
    keeper = AdmissionKeeper(object(), object(), print, recheck=3600)  # type: ignore[arg-type]
    assert keeper.due()  # nothing seen yet
    keeper.run_once()
    assert not keeper.due()  # same keys, recheck not due
    held["kita"] = "K2"  # a member joined
    assert keeper.due()
    keeper.run_once()
    assert not keeper.due()
    keeper.recheck = 0.0
    assert keeper.due()  # undo what was registered behind its back, now and then


def test_a_join_in_this_process_wakes_the_keeper_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`coordinator serve` took the join: its keeper looks now, not in two seconds."""
    import threading

    from kumiai.services.node_admission import members_changed

    ran = threading.Event()
    monkeypatch.setattr(node_admission, "admit_members", lambda consortium, link: ran.set() or [])
    keeper = AdmissionKeeper(object(), object(), print, every=3600).start()  # type: ignore[arg-type]
    try:
        assert not ran.wait(0.3)  # nothing due before the hour
        members_changed()
        assert ran.wait(5)
    finally:
        keeper.stop()
    assert not keeper._thread.is_alive()
    assert keeper not in node_admission._RUNNING
