"""Miss-path timing in one process: `python -m bench.inprocess [-n 200] [--only agent_list,...]`.

Each endpoint's request through the whole Django stack (middleware included) with the Django
test client, the bench settings and database and CACHE_ENABLED=false, interleaved round by
round so the machine's noise hits every endpoint alike. Prints the median per endpoint and
its ratio to the floor's requests per second (bench/naive.py's trivial view). Writes are
undone after each timed request, outside the timing.
"""

import argparse
import time
from statistics import median

from .config import setup_in_process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--only", default="", help="comma-separated endpoint keys")
    args = parser.parse_args()

    setup_in_process("inprocess", uncached=True)
    from django.test import Client

    from .fixture import build_fixture

    endpoints = _endpoints(Client(HTTP_HOST="127.0.0.1"), build_fixture())
    wanted = [k for k in args.only.split(",") if k]
    if wanted:
        endpoints = {k: v for k, v in endpoints.items() if k == "floor" or k in wanted}
    _warm_up(endpoints)
    times = _timed_rounds(endpoints, args.n)
    floor = median(times["floor"])
    print(f"{'endpoint':20} {'median ms':>10} {'x floor req/s':>14}")
    for key, samples in times.items():
        m = median(samples)
        print(f"{key:20} {m * 1000:10.3f} {floor / m:14.3f}")


def _endpoints(client, fx) -> dict:
    """Each endpoint's call: a read returns its response, a write (response, its undo)."""
    from marketplace.models import Review

    auth = {"HTTP_AUTHORIZATION": f"Token {fx.token}"}
    # An agent the user has neither installed nor reviewed, for the writes.
    target = next(
        pk
        for pk in fx.agents_by_popularity[50:]
        if not Review.objects.filter(user_id=fx.user_id, agent_id=pk).exists()
        and client.delete(f"/api/v1/agents/{pk}/install/", **auth).status_code == 204
    )

    def get(path, **headers):
        return lambda: client.get(path, **headers)

    def install():
        response = client.post(f"/api/v1/agents/{target}/install/", **auth)
        return response, lambda: client.delete(f"/api/v1/agents/{target}/install/", **auth)

    def review():
        response = client.post(
            f"/api/v1/agents/{target}/reviews/",
            {"rating": 4, "title": "Fine", "body": "Does the job."},
            content_type="application/json",
            **auth,
        )
        mine = f"/api/v1/agents/{target}/reviews/mine/"
        return response, lambda: client.delete(mine, **auth)

    return {
        "floor": get("/floor/"),
        "agent_list": get(f"/api/v1/marketplace/agents/?category={fx.category_slug}"),
        "agent_detail": get(f"/api/v1/agents/{fx.agent_id}/"),
        "agent_detail_auth": get(f"/api/v1/agents/{fx.agent_id}/", **auth),
        "my_installations": get("/api/v1/me/installations/", **auth),
        "knowledge": get("/api/v1/knowledge/entries/", **auth),
        "search": get(f"/api/v1/agents/search/?q={fx.search_term}"),
        "install": install,
        "review": review,
    }


def _warm_up(endpoints: dict) -> None:
    """Five untimed calls each; stops on any endpoint that does not answer 200 or 201."""
    for key, call in endpoints.items():
        for _ in range(5):
            result = call()
            response, undo = result if isinstance(result, tuple) else (result, None)
            if response.status_code not in (200, 201):
                raise SystemExit(f"{key} answered {response.status_code}")
            if undo:
                undo()


def _timed_rounds(endpoints: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per call, endpoint after endpoint in each round; a write's undo is not timed."""
    times = {key: [] for key in endpoints}
    for _ in range(rounds):
        for key, call in endpoints.items():
            start = time.perf_counter()
            result = call()
            times[key].append(time.perf_counter() - start)
            if isinstance(result, tuple):
                result[1]()
    return times


if __name__ == "__main__":
    main()
