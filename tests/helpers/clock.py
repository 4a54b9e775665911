"""The response cache's clock moved forward, for tests of staleness and expiry."""

from aios import response_cache


def skip_ahead(monkeypatch, seconds: float) -> None:
    """From now until the test ends, the response cache reads a time `seconds` later."""
    # aios.response_cache has no public clock: its private `_now` is the one seam.
    later = response_cache._now() + seconds
    monkeypatch.setattr(response_cache, "_now", lambda: later)
