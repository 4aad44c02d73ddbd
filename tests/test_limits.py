"""A worker's memory bounds (fast tier): the large-body budget and the turn that keeps one large
request's Python records in memory at a time (serving/limits.py)."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from carnn_pyfunc.serving.errors import ApiError
from carnn_pyfunc.serving.limits import Slots, Turn, TurnNotHandedBack


def test_the_byte_budget_lets_one_body_in_whatever_it_weighs_then_counts_bytes():
    budget = Slots(10, "bytes of large request bodies")
    first = budget.take(25)  # alone: always let in
    with pytest.raises(ApiError) as refused:
        budget.take(1)
    assert refused.value.status == 503
    assert "bytes of large request bodies" in refused.value.body().decode()
    first.free()
    first.free()  # freeing twice counts once
    assert budget.busy == 0
    a, b = budget.take(4), budget.take(6)
    assert budget.busy == 10
    a.free(), b.free()


def test_the_next_large_request_waits_for_the_previous_ones_records():
    turn = Turn(timeout_s=5)
    order = []
    assert turn.within(lambda: order.append("first") or "answer") == "answer"
    second = threading.Thread(target=turn.within, args=(lambda: order.append("second"),))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # the first's records are not compact yet
    order.append("first handed back")
    turn.end()
    second.join(5)
    assert order == ["first", "first handed back", "second"]
    turn.end()


def test_failed_work_hands_the_turn_back_at_once():
    turn = Turn(timeout_s=5)
    with pytest.raises(ZeroDivisionError):
        turn.within(lambda: 1 / 0)
    assert turn.within(lambda: "next") == "next"  # no wait
    turn.end()


def test_a_turn_never_handed_back_refuses_the_work_and_takes_no_turn():
    turn = Turn(timeout_s=0.05)
    turn.within(lambda: None)  # held, never ended
    ran = []
    with pytest.raises(TurnNotHandedBack):
        turn.within(lambda: ran.append(1))
    assert not ran
    turn.end()  # the one holder hands it back: one permit, not two
    turn.within(lambda: None)
    with pytest.raises(TurnNotHandedBack):
        turn.within(lambda: None)
    turn.end()


def test_work_that_outlived_its_request_hands_the_turn_back_only_if_it_held_it():
    turn = Turn(timeout_s=0.05)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(turn.within, lambda: "late answer")
        done.add_done_callback(turn.end_if_done)
        done.result()
        refused = pool.submit(turn.within, lambda: 1 / 0)  # fails: handed back by within
        refused.add_done_callback(turn.end_if_done)  # ... and not a second time here
        with pytest.raises(ZeroDivisionError):
            refused.result()
    turn.within(lambda: None)
    with pytest.raises(TurnNotHandedBack):  # exactly one permit
        turn.within(lambda: None)
    turn.end()
