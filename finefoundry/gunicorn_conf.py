"""gunicorn settings for `python3 tasks.py serve` (and the tests' real server, tests/helpers/servers.py).

Several worker processes, each with its own database connection: SQLite's WAL and busy timeout
queue their writes; on PostgreSQL they are ordinary clients. Workers are forked before Django
loads (no preload_app), so no database connection or log-writer thread crosses a fork.

Environment: FINEFOUNDRY_BIND (default 127.0.0.1:8000), FINEFOUNDRY_WORKERS (default: 2 per CPU
core plus one, at most 8), FINEFOUNDRY_TIMEOUT (seconds a request may take, default 120: an
export or a merge of a big session is a long request).
"""

import os

from finefoundry.env import env_int

wsgi_app = "finefoundry.wsgi:application"
bind = os.environ.get("FINEFOUNDRY_BIND", "127.0.0.1:8000")
workers = env_int("FINEFOUNDRY_WORKERS", min(8, 2 * (os.cpu_count() or 1) + 1), minimum=1)
timeout = env_int("FINEFOUNDRY_TIMEOUT", 120, minimum=1)
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
preload_app = False
# A reload of the code is a restart: `kill -HUP` gunicorn's master process.
