"""Task 4.4: FrameQueue's overload policy. ``drop_oldest`` never waits and hands back (and counts) the frame it
evicts; ``block`` makes ``put`` wait for room; ``get`` waits up to its timeout; ``close`` wakes everyone.

Items are plain ints and tuples, so the file runs in about two seconds (most of it threads waiting on
short timeouts); no assertion is on speed beyond "it did not hang".
"""
from __future__ import annotations

import collections
import queue
import random
import threading
import time

import pytest

from .impl import p4p

pytestmark = pytest.mark.phase4_task4

#: Longest any single wait in this file may take before it counts as a hang.
HANG_S = 5.0


def in_thread(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    """Run ``fn`` on a daemon thread; the dict gets ``"value"`` or ``"error"`` once it returns."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def wait_until_blocked(t: threading.Thread, box: dict, settle_s: float = 0.05) -> None:
    """Give ``t`` time to reach its wait; fail if it returned instead."""
    time.sleep(settle_s)
    assert t.is_alive(), f"the call was expected to wait, but it returned: {box}"


# ------------------------------------------------------------------------------------------------
# drop_oldest
# ------------------------------------------------------------------------------------------------
def test_drop_oldest_returns_and_counts_each_evicted_item():
    q = p4p.FrameQueue(3, "drop_oldest")
    assert [q.put(i) for i in range(3)] == [None, None, None]
    assert q.dropped == 0 and len(q) == 3
    assert [q.put(i) for i in range(3, 8)] == [0, 1, 2, 3, 4], "a full queue evicts its oldest item, and put returns it"
    assert q.dropped == 5 and len(q) == 3
    assert [q.get(timeout=0) for _ in range(3)] == [5, 6, 7]
    assert q.put(8) is None, "room again: nothing evicted"
    assert q.dropped == 5


def test_drop_oldest_never_waits():
    q = p4p.FrameQueue(1, "drop_oldest")
    q.put("a")
    t, box = in_thread(q.put, "b")
    t.join(HANG_S)
    assert not t.is_alive(), "put on a full drop_oldest queue must not wait"
    assert box == {"value": "a"}
    assert q.get(timeout=0) == "b"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_puts_and_gets_behave_like_a_bounded_deque(seed):
    rng = random.Random(seed)
    maxsize = rng.randint(1, 5)
    q, model, dropped = p4p.FrameQueue(maxsize, "drop_oldest"), collections.deque(), 0
    for i in range(300):
        if rng.random() < 0.6:
            want = model.popleft() if len(model) == maxsize else None
            dropped += want is not None
            model.append(i)
            assert q.put(i) == want, f"step {i}: put"
        elif model:
            assert q.get(timeout=0) == model.popleft(), f"step {i}: get must give the oldest item"
        else:
            with pytest.raises(queue.Empty):
                q.get(timeout=0)
        assert len(q) == len(model) <= maxsize
        assert q.dropped == dropped


# ------------------------------------------------------------------------------------------------
# get
# ------------------------------------------------------------------------------------------------
def test_get_on_an_empty_queue_raises_empty_after_its_timeout():
    q = p4p.FrameQueue(2)
    assert p4p.Empty is queue.Empty, "Empty is queue.Empty, so callers can catch the standard exception"
    with pytest.raises(queue.Empty):
        q.get(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    assert time.monotonic() - t0 < HANG_S


def test_a_waiting_get_is_woken_by_a_put(no_thread_leak):
    q = p4p.FrameQueue(2)
    t, box = in_thread(q.get, timeout=HANG_S)
    wait_until_blocked(t, box)
    q.put("frame")
    t.join(HANG_S)
    assert box == {"value": "frame"}


def test_get_without_timeout_waits_until_something_comes(no_thread_leak):
    q = p4p.FrameQueue(2, "block")
    t, box = in_thread(q.get)
    wait_until_blocked(t, box)
    q.put(7)
    t.join(HANG_S)
    assert box == {"value": 7}


# ------------------------------------------------------------------------------------------------
# block
# ------------------------------------------------------------------------------------------------
def test_block_put_on_a_full_queue_times_out_and_drops_nothing():
    q = p4p.FrameQueue(2, "block")
    assert q.put("a") is None and q.put("b") is None
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        q.put("c", timeout=0.05)
    assert time.monotonic() - t0 < HANG_S
    assert q.dropped == 0 and len(q) == 2
    assert [q.get(timeout=0), q.get(timeout=0)] == ["a", "b"], "a timed-out put leaves the queue as it was"


def test_block_put_waits_for_room_and_a_get_lets_it_in(no_thread_leak):
    q = p4p.FrameQueue(1, "block")
    q.put("a")
    t, box = in_thread(q.put, "b")
    wait_until_blocked(t, box)
    assert q.get(timeout=1) == "a"
    t.join(HANG_S)
    assert box == {"value": None}, "a block put returns None once the item is in"
    assert q.get(timeout=1) == "b" and q.dropped == 0


def test_drain_takes_everything_and_lets_a_blocked_put_in(no_thread_leak):
    q = p4p.FrameQueue(2, "block")
    q.put(1), q.put(2)
    t, box = in_thread(q.put, 3)
    wait_until_blocked(t, box)
    assert q.drain() == [1, 2]
    t.join(HANG_S)
    assert box == {"value": None} and q.get(timeout=1) == 3


# ------------------------------------------------------------------------------------------------
# close
# ------------------------------------------------------------------------------------------------
def test_a_closed_queue_refuses_puts_and_hands_out_what_is_left():
    q = p4p.FrameQueue(3)
    q.put(1), q.put(2)
    q.close()
    assert q.closed
    with pytest.raises(p4p.QueueClosed):
        q.put(3)
    assert [q.get(timeout=1), q.get(timeout=1)] == [1, 2], "items queued before close can still be taken"
    for timeout in (None, 0, 1.0):
        t0 = time.monotonic()
        with pytest.raises(p4p.QueueClosed):
            q.get(timeout=timeout)
        assert time.monotonic() - t0 < 0.5, "get on a closed, empty queue returns at once"


def test_close_wakes_a_waiting_get(no_thread_leak):
    q = p4p.FrameQueue(2)
    t, box = in_thread(q.get, timeout=None)
    wait_until_blocked(t, box)
    q.close()
    t.join(HANG_S)
    assert not t.is_alive(), "close() must wake a get waiting without a timeout"
    assert isinstance(box.get("error"), p4p.QueueClosed), box


def test_close_wakes_a_put_waiting_for_room(no_thread_leak):
    q = p4p.FrameQueue(1, "block")
    q.put("a")
    t, box = in_thread(q.put, "b")
    wait_until_blocked(t, box)
    q.close()
    t.join(HANG_S)
    assert not t.is_alive(), "close() must wake a put waiting for room"
    assert isinstance(box.get("error"), p4p.QueueClosed), box


# ------------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------------
def run_threads(q, producers: int, per_producer: int, consumers: int):
    """``producers`` threads put (p, i) items while ``consumers`` threads get them; (got, evicted, sizes, taken):
    ``taken[c]`` is what consumer ``c`` got, in the order it took them (``got`` interleaves the consumers in the
    order they appended, which the scheduler decides, not the queue)."""
    got, evicted, sizes, lock = [], [], [], threading.Lock()
    taken: list[list] = [[] for _ in range(consumers)]
    done = threading.Event()

    def produce(p: int):
        for i in range(per_producer):
            e = q.put((p, i))
            if e is not None:
                with lock:
                    evicted.append(e)

    def consume(c: int):
        while True:
            try:
                item = q.get(timeout=0.02)
            except queue.Empty:
                if done.is_set() and len(q) == 0:
                    return
                continue
            taken[c].append(item)
            with lock:
                got.append(item)
                sizes.append(len(q))

    threads = [threading.Thread(target=produce, args=(p,), daemon=True) for p in range(producers)]
    readers = [threading.Thread(target=consume, args=(c,), daemon=True) for c in range(consumers)]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join(20)
    done.set()
    for t in readers:
        t.join(20)
    assert not any(t.is_alive() for t in threads + readers), "a producer or consumer never finished"
    return got, evicted, sizes, taken


def test_drop_oldest_with_threads_loses_nothing_uncounted(no_thread_leak):
    q = p4p.FrameQueue(8, "drop_oldest")
    got, evicted, sizes, taken = run_threads(q, producers=4, per_producer=500, consumers=2)
    assert sorted(got + evicted) == sorted((p, i) for p in range(4) for i in range(500)), (
        f"{len(got)} got + {len(evicted)} evicted of 2000 put: every item must be got or evicted, exactly once")
    assert q.dropped == len(evicted)
    assert max(sizes, default=0) <= 8, f"the queue held {max(sizes)} items with maxsize 8"
    for p in range(4):
        for c, mine in enumerate(taken):
            seq = [i for pp, i in mine if pp == p]
            assert seq == sorted(seq), f"consumer {c} took producer {p}'s items out of order"


def test_block_with_threads_delivers_everything(no_thread_leak):
    q = p4p.FrameQueue(4, "block")
    got, evicted, _, _ = run_threads(q, producers=3, per_producer=300, consumers=2)
    assert evicted == [] and q.dropped == 0
    assert sorted(got) == sorted((p, i) for p in range(3) for i in range(300))
