"""What the management commands meant for cron share."""

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_on_signal(stderr, *, after: str):
    """An event set by SIGTERM or SIGINT, so a command finishes the item in hand and stops; the
    previous handlers come back on exit. ``after`` names that item ("this reminder")."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        stop.set()
        stderr.write(f"Received {signal.Signals(signum).name}: stopping after {after}.")

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
