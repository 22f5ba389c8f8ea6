"""Test the hashing gate: how many hold a slot, how many wait, who is turned away, and when.

Threads hold slots until told to let go (threading.Event), so nothing depends on sleeping;
the only sleeps are the short polls of ``wait_until``, never an assertion by themselves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from helpers import GOOD_PASSWORD, add_user, count_users, login, slot_held_elsewhere
from yupnope import wiring
from yupnope.db import WRITE_OPTION
from yupnope.errors import Busy
from yupnope.hashing import HASH_NICENESS, Gate, hashing_slots
from yupnope.models import ThrottleCounter

#: Seconds a test thread may take for anything; reaching it means the test failed.
PATIENCE = 10


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds, failing the test after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


class Holders:
    """Threads that take a slot of ``gate``, note it, and keep it until released."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.entered = 0
        self.busy = 0
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._hold, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _hold(self) -> None:
        try:
            with self.gate.slot():
                with self.lock:
                    self.inside += 1
                    self.entered += 1
                    self.most_inside = max(self.most_inside, self.inside)
                self.release.wait(PATIENCE)
                with self.lock:
                    self.inside -= 1
        except Busy:
            with self.lock:
                self.busy += 1

    def join(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(PATIENCE)
            assert not thread.is_alive()


@pytest.fixture
def holders() -> Iterator[Callable[[Gate], Holders]]:
    made: list[Holders] = []

    def make(gate: Gate) -> Holders:
        made.append(Holders(gate))
        return made[-1]

    yield make
    for each in made:
        each.release.set()


def test_at_most_slots_hold_and_at_most_slots_wait(holders: Callable[[Gate], Holders]) -> None:
    gate = Gate(slots=2, wait=PATIENCE, queue=2)
    first = holders(gate)
    first.start(2)
    wait_until(lambda: first.inside == 2, "two threads hold a slot")
    waiters = holders(gate)
    waiters.start(2)
    wait_until(lambda: gate.waiting == 2, "two threads wait")

    # A fifth is turned away at once: it does not queue behind the waiters.
    started = time.monotonic()
    with pytest.raises(Busy), gate.slot():
        pass
    assert time.monotonic() - started < PATIENCE / 4
    assert waiters.entered == 0

    # Each slot given back goes to a waiter; never more than two inside.
    first.join()
    wait_until(lambda: waiters.entered == 2, "both waiters got a slot")
    waiters.join()
    assert first.most_inside == 2
    assert waiters.most_inside <= 2
    assert first.busy == waiters.busy == 0
    assert gate.waiting == 0


def test_many_at_once_never_hold_more_than_the_slots(holders: Callable[[Gate], Holders]) -> None:
    gate = Gate(slots=3, wait=PATIENCE, queue=3)
    crowd = holders(gate)
    crowd.start(12)
    # Three hold, three wait, six are turned away.
    wait_until(lambda: crowd.busy == 6, "six are turned away")
    assert crowd.inside == 3
    crowd.join()
    assert crowd.most_inside == 3
    assert crowd.entered == 6


def test_a_waiter_that_gets_no_slot_in_time_is_busy(holders: Callable[[Gate], Holders]) -> None:
    gate = Gate(slots=1, wait=0.2, queue=1)
    holder = holders(gate)
    holder.start(1)
    wait_until(lambda: holder.inside == 1, "the slot is held")
    for _ in range(2):  # the first waiter's place is free again for the second
        started = time.monotonic()
        with pytest.raises(Busy), gate.slot():
            pass
        waited = time.monotonic() - started
        assert 0.15 <= waited < PATIENCE / 2
        assert gate.waiting == 0
    holder.join()
    with gate.slot():
        pass


def test_a_slot_given_back_goes_to_the_longest_waiter_not_a_newcomer() -> None:
    gate = Gate(slots=1, wait=PATIENCE, queue=2)
    order: list[str] = []
    waiter = threading.Thread(target=lambda: _enter(gate, order, "waiter"), daemon=True)
    with gate.slot():
        waiter.start()
        wait_until(lambda: gate.waiting == 1, "the waiter is in line")
    # Asking again straight after giving the slot back: the waiter was first.
    _enter(gate, order, "newcomer")
    waiter.join(PATIENCE)
    assert order == ["waiter", "newcomer"]
    assert gate.waiting == 0


def _enter(gate: Gate, order: list[str], name: str) -> None:
    with gate.slot():
        order.append(name)


def _one_slot_held(holders: Callable[[Gate], Holders]) -> tuple[Gate, Holders]:
    """Return a gate of one slot and one queue place, and the holder of its slot."""
    gate = Gate(slots=1, wait=PATIENCE, queue=1)
    holder = holders(gate)
    holder.start(1)
    wait_until(lambda: holder.inside == 1, "the slot is held")
    return gate, holder


def _script_the_wait(
    monkeypatch: pytest.MonkeyPatch, holder: Holders, hand_over: bool, end: Callable[[], bool]
) -> None:
    """Make a wait in line first let ``holder`` hand its slot over, if asked, then ``end()``."""

    class Scripted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            if hand_over:
                holder.release.set()
                wait_until(self.is_set, "the slot is handed over")
            return end()

    monkeypatch.setattr(threading, "Event", Scripted)


def _interrupt() -> bool:
    """Raise what a signal arriving during a wait would raise."""
    raise KeyboardInterrupt


@pytest.mark.parametrize("handed_over", [False, True], ids=["in line", "as the slot came"])
def test_a_waiter_interrupted_leaves_the_line_and_holds_nothing(
    handed_over: bool, holders: Callable[[Gate], Holders], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, holder = _one_slot_held(holders)
    _script_the_wait(monkeypatch, holder, handed_over, _interrupt)
    with pytest.raises(KeyboardInterrupt), gate.slot():
        pytest.fail("an interrupted waiter entered")
    monkeypatch.undo()
    assert gate.waiting == 0
    holder.join()
    # Nothing is held: no slot leaked to the interrupted waiter.
    assert gate._held == 0


def test_a_slot_handed_over_as_the_wait_runs_out_is_kept(
    holders: Callable[[Gate], Holders], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, holder = _one_slot_held(holders)
    _script_the_wait(monkeypatch, holder, True, lambda: False)
    entered = False
    with gate.slot():
        entered = True
    monkeypatch.undo()
    assert entered
    holder.join()
    assert gate._held == 0
    assert gate.waiting == 0


def test_a_slot_is_given_back_when_the_block_raises() -> None:
    gate = Gate(slots=1, wait=0.01, queue=1)
    for error in (ValueError("in the hash"), Busy(), KeyboardInterrupt()):
        with pytest.raises(type(error)), gate.slot():
            raise error
    # Were the slot still held, this would wait 0.01 s and raise Busy.
    with gate.slot():
        pass


# Through the pages


def counts(app: Flask) -> dict[tuple[str, str], int]:
    with app.app_context():
        rows = wiring.orm_session().scalars(select(ThrottleCounter)).all()
        return {(row.scope, row.key): row.count for row in rows}


def test_a_login_with_no_free_slot_gets_503_and_is_not_counted(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.05)
    add_user(app, "alice")
    browser = app.test_client()
    assert login(browser, "alice", "not the password").headers["Location"] == "/nope"
    before = counts(app)
    assert sorted(n for n in before.values()) == [1, 1, 1]

    with slot_held_elsewhere(app):
        busy: Any = login(browser, "alice")
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert busy.mimetype == "text/html"
    text = busy.get_data(as_text=True)
    assert "The server is busy checking other logins. Try again in a moment." in text
    assert "Set-Cookie" not in busy.headers
    assert counts(app) == before

    assert login(browser, "alice", GOOD_PASSWORD).headers["Location"] == "/yup"


def test_a_gate_with_every_slot_and_queue_place_taken_is_saturated(
    holders: Callable[[Gate], Holders],
) -> None:
    # With no queue at all, a free slot still admits.
    assert not Gate(slots=1, wait=PATIENCE, queue=0).saturated()
    gate = Gate(slots=1, wait=PATIENCE, queue=1)
    assert not gate.saturated()
    group = holders(gate)
    group.start(2)
    wait_until(gate.saturated, "the holder and the waiter")
    group.join()
    assert not gate.saturated()
    assert group.entered == 2


def test_a_login_against_a_saturated_gate_costs_no_database_write(
    app_factory: Callable[..., Flask],
) -> None:
    """Refuse a login at once when no slot or queue place is left, before any counting.

    Under a flood, a refusal that wrote throttle counters (and took them back) would cost two
    write transactions each and starve the pages; it costs none.
    """
    app = app_factory(hash_concurrency=1)
    add_user(app, "alice")
    wiring.get(app).hasher.gate.queue = 0
    # The first request of a process prunes expired rows (a write of its own): get it done.
    assert app.test_client().get("/healthz").status_code == 200
    engine = wiring.get(app).engine
    writes: list[bool] = []

    def began(connection: Any) -> None:
        writes.append(bool(connection.get_execution_options().get(WRITE_OPTION)))

    with slot_held_elsewhere(app):
        event.listen(engine, "begin", began)
        try:
            busy: Any = login(app.test_client(), "alice")
        finally:
            event.remove(engine, "begin", began)
    assert busy.status_code == 503
    assert writes.count(True) == 0
    assert counts(app) == {}


def test_a_busy_login_reads_nothing_not_even_the_session_it_would_replace(
    app_factory: Callable[..., Flask],
) -> None:
    """Refuse a login at once when every slot is taken, though the browser holds a session."""
    app = app_factory(hash_concurrency=1)
    add_user(app, "alice")
    browser = app.test_client()
    assert login(browser, "alice", GOOD_PASSWORD).headers["Location"] == "/yup"
    wiring.get(app).hasher.gate.queue = 0
    engine = wiring.get(app).engine
    transactions: list[Any] = []

    def began(connection: Any) -> None:
        transactions.append(connection)

    with slot_held_elsewhere(app):
        event.listen(engine, "begin", began)
        try:
            busy: Any = login(browser, "alice")
        finally:
            event.remove(engine, "begin", began)
    assert busy.status_code == 503
    assert transactions == []
    assert "Set-Cookie" not in busy.headers


def signup_while_busy(app: Flask) -> Any:
    """Post a good sign-up form while the only hashing slot is held elsewhere."""
    form = {"username": "carol", "password": GOOD_PASSWORD}
    with slot_held_elsewhere(app):
        return app.test_client().post(
            "/signup", data=form, headers={"Sec-Fetch-Site": "same-origin"}
        )


def test_a_sign_up_with_no_free_slot_creates_nothing(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.05)
    busy = signup_while_busy(app)
    assert "The server is busy checking other logins." in busy.get_data(as_text=True)
    assert "Set-Cookie" not in busy.headers
    assert count_users(app) == 0


def test_a_sign_up_with_no_free_slot_gets_503(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.05)
    busy = signup_while_busy(app)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"


def test_the_app_queues_four_logins_per_cpu(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(hash_concurrency=3)
    gate = wiring.get(app).hasher.gate
    assert (gate.slots, gate.queue) == (3, 4 * (os.cpu_count() or 1))


@pytest.mark.parametrize(
    ("cpus", "workers", "slots"), [(2, 2, 1), (2, 1, 2), (8, 3, 3), (4, 4, 1), (2, 5, 1)]
)
def test_serve_shares_the_cpus_out_among_its_workers(cpus: int, workers: int, slots: int) -> None:
    assert hashing_slots(cpus, workers) == slots


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="needs setpriority(2)")
def test_hashes_run_at_a_lower_priority_than_the_request_threads() -> None:
    gate = Gate(slots=1, wait=PATIENCE, queue=0)
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert gate.run(niceness) == min(19, here + HASH_NICENESS)
    # The thread that asked is left as it was.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here
