"""Turns at the database for threads that mostly wait on the network.

A thread that makes slow calls (the settlement's gateway calls, hundreds in flight) reads or writes
the database only now and then. Holding a connection each would take one per call in flight, more
than a stock PostgreSQL accepts (``max_connections`` 100). Such a thread joins a ``Turns``; each
stretch of its database work runs in ``database_turn()``: at most ``size`` of these threads are in a
turn at once, and each gives its connections back when its turn ends. Outside such threads (web
requests, the main thread of a command) ``database_turn()`` changes nothing.
"""

import contextlib
import threading

from django.db import connections

_local = threading.local()


class Turns:
    """At most ``size`` threads at once in a ``database_turn()``, among those that joined."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("At least one turn at a time.")
        self.size = size
        self.slots = threading.BoundedSemaphore(size)

    def join(self) -> None:
        """The calling thread takes turns from now on."""
        _local.turns = self


@contextlib.contextmanager
def database_turn():
    """Database work of a thread that joined ``Turns``: waits for a turn, and closes the thread's
    connections at its end (a turn inside a turn is part of it). Elsewhere, nothing is done."""
    turns = getattr(_local, "turns", None)
    if turns is None or getattr(_local, "in_turn", False):
        yield
        return
    with turns.slots:
        _local.in_turn = True
        try:
            yield
        finally:
            _local.in_turn = False
            close_own_connections()


def close_own_connections() -> None:
    """Close this thread's connections that hold no transaction."""
    for conn in connections.all(initialized_only=True):
        # An in-memory SQLite database lives only as long as its connection (tests), and a file's
        # costs nothing to keep; an open transaction is its owner's to end.
        if conn.connection is not None and conn.vendor != "sqlite" and not conn.in_atomic_block:
            conn.close()
