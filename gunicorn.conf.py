"""gunicorn's settings for the console; gunicorn reads this file when started in this directory.

    gunicorn billing_console.wsgi --bind 0.0.0.0:8000

Serving a page is mostly Python work between short database round trips. One process more than
there are cores keeps the cores busy; two threads per process overlap one request's database wait
with another's Python work. More of either only queues for the same cores (threads of one process
take turns on its interpreter lock) and makes the slowest answers slower. ``WEB_CONCURRENCY`` sets
the number of processes, and any option given on the command line wins over this file.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
threads = 2
timeout = 60
# Keep a client's (or the load balancer's) connection open between requests.
keepalive = 5
