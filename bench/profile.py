"""Where a request's time goes: `python -m bench.profile /api/v1/... [--uncached] [-n 200]`.

Runs the request in-process through the whole Django stack (middleware included) with the
bench settings and database, under cProfile, and prints the functions with the most
cumulative time. For a missed target, before guessing.
"""

import argparse
import cProfile
import pstats
import time

from .config import setup_in_process


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("path")
    parser.add_argument("-n", type=int, default=200, help="requests profiled")
    parser.add_argument("--uncached", action="store_true", help="CACHE_ENABLED=false")
    parser.add_argument("--token", help="send `Authorization: Token ...`")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    setup_in_process("profile", uncached=args.uncached)
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Token {args.token}"} if args.token else {}
    status = client.get(args.path, **headers).status_code
    for _ in range(5):
        client.get(args.path, **headers)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(args.n):
        client.get(args.path, **headers)
    profiler.disable()
    elapsed = (time.perf_counter() - start) / args.n * 1000
    print(f"{args.path}: status {status}, {elapsed:.2f} ms per request under cProfile")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
