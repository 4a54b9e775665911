"""Gunicorn settings; the same knobs as the app (README, "Settings")."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("API_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("API_THREADS", 1))
# A request past REQUEST_TIMEOUT is cut by the database first (statement timeout); the
# worker timeout is the last resort behind it.
timeout = int(os.environ.get("REQUEST_TIMEOUT", 30)) + 5
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
wsgi_app = "aios.wsgi:application"
