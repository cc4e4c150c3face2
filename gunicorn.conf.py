"""gunicorn's settings for the console; gunicorn reads this file when started in this directory.

    gunicorn billing_console.wsgi --bind 0.0.0.0:8000

Serving a page is mostly Python work between short database round trips, and the threads of one
process take turns on its interpreter lock: processes, not threads, use the cores. Two per core
and one more (gunicorn's own advice) keeps every core busy while others wait on the database;
measured with bench/console.py on two cores, that served the pages about half again as fast as
three processes of two threads. ``WEB_CONCURRENCY`` sets the number of processes, and any option
given on the command line wins over this file.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
threads = 1
timeout = 60
# Keep a client's (or the load balancer's) connection open between requests.
keepalive = 5
