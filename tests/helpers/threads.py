"""Many writers at once: real threads, each with its own database connection."""

import contextlib
import threading

from django.db import close_old_connections, connection

from marketplace import services
from marketplace.models import Review


def run_in_threads(jobs, workers=16):
    """Run callables on `workers` threads, each with its own connection; collect exceptions."""
    errors, lock = [], threading.Lock()
    queue = list(jobs)
    barrier = threading.Barrier(workers)

    def worker():
        try:
            barrier.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    job = queue.pop()
                try:
                    job()
                except Exception as exc:  # collected for the caller to assert on
                    with lock:
                        errors.append(exc)
        finally:
            connection.close()
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def review_job(rng, user, agent, rating, *, hide_share=0.0):
    """Review the agent; when already reviewed, delete (30 %), flip hidden (`hide_share`) or
    re-rate the review, drawing once from `rng`."""

    def job():
        try:
            services.create_review(user=user, agent=agent, rating=rating)
        except services.ReviewAlreadyExists:
            review = Review.objects.filter(user=user, agent=agent).first()
            if review is None:
                return
            # A concurrent job may have deleted it: the API answers 404 there.
            with contextlib.suppress(Review.DoesNotExist):
                roll = rng.random()
                if roll < 0.3:
                    services.delete_review(review=review)
                elif roll < 0.3 + hide_share:
                    services.set_review_hidden(review=review, hidden=not review.is_hidden)
                else:
                    services.update_review(review=review, rating=rating)

    return job
