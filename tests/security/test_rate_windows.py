"""The API's rate throttles count in two fixed windows, in the configured cache (Redis on the
PostgreSQL + Redis run, the file cache on the embedded default)."""

import uuid

import pytest
from django.core.cache import cache

from aios.throttling import window_hit

MINUTE = 60.0
START = 1_700_000_040.0  # a window boundary for 60 s windows


def _key():
    return f"test-rate:{uuid.uuid4().hex}"


def test_a_window_lets_the_limit_through_and_refuses_without_counting_the_refusal():
    key = _key()
    waits = [window_hit(cache, key, limit=3, duration=MINUTE, now=START + i) for i in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert all(wait > 0 for wait in waits[3:])
    # Refusals were not counted: the next window sees 3 before, not 6.
    half_way = START + MINUTE + MINUTE / 2  # the previous window still weighs 1/2: 1.5 of 3
    allowed = [window_hit(cache, key, limit=3, duration=MINUTE, now=half_way) for _ in range(3)]
    assert [wait == 0 for wait in allowed] == [True, False, False]


def test_the_previous_window_weighs_by_how_much_the_sliding_window_still_covers():
    key = _key()
    for i in range(10):
        assert window_hit(cache, key, limit=10, duration=MINUTE, now=START + i) == 0
    # A quarter into the next window, 7.5 of the previous 10 still count: 2 more fit.
    quarter = START + MINUTE + MINUTE / 4
    results = [window_hit(cache, key, limit=10, duration=MINUTE, now=quarter) for _ in range(4)]
    assert [wait == 0 for wait in results] == [True, True, False, False]


@pytest.mark.parametrize(
    ("spent_at", "refused_at", "expected_wait"),
    [
        # 3 in the previous window weigh 2.75 five seconds in: room once they weigh 2.
        (START + 50, START + MINUTE + 5, MINUTE / 3 - 5),
        # 3 in this window: room 20 s into the next, once they weigh 2 there.
        (START + 1, START + 5, MINUTE - 5 + MINUTE / 3),
    ],
)
def test_the_wait_it_names_is_when_a_request_passes_again(spent_at, refused_at, expected_wait):
    key = _key()
    for i in range(3):
        assert window_hit(cache, key, limit=3, duration=MINUTE, now=spent_at + i / 10) == 0
    wait = window_hit(cache, key, limit=3, duration=MINUTE, now=refused_at)
    assert wait == pytest.approx(expected_wait)
    assert window_hit(cache, key, limit=3, duration=MINUTE, now=refused_at + wait - 1) > 0
    assert window_hit(cache, key, limit=3, duration=MINUTE, now=refused_at + wait + 0.01) == 0


def test_a_cache_outage_lets_requests_through():
    class Down:
        def count_in_window(self, *args, **kwargs):
            return None

    assert all(window_hit(Down(), "k", limit=1, duration=MINUTE) == 0 for _ in range(5))
