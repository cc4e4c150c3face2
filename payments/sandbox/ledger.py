"""The sandbox ledger's writer: the charges of calls made at once, written together.

A processor commits the charges of many requests together and holds no database connection per
request. The sandbox does the same while calls are made from many threads
(``SandboxGateway.calls_together``): each calling thread hands its charge to one writer thread and
waits until the charge is committed, so a reply still comes only once its charge is durable (a crash
after it loses nothing), but N calls in flight cost one connection and one statement, not N
connections and N commits.
"""

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable

from django.db import connections

from .routers import SANDBOX_DB

logger = logging.getLogger("payments.sandbox")

# At most this many charges in one statement; more waiting go in the next.
MAX_GROUP = 500


@dataclasses.dataclass
class _Slot:
    request: object
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None


class GroupWriter:
    """One thread that applies ``write`` (a list of requests to a list of results, in order, on
    this thread's connections) to the requests waiting, as many as are there at once. Started by
    the first ``open``, stopped (its connections closed) by the last ``close``."""

    def __init__(self, write: Callable[[list], list], *, name: str):
        self.write_group, self.name = write, name
        self.lock = threading.Lock()
        self.users = 0
        self.queue: queue.SimpleQueue | None = None
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.queue is not None

    def open(self) -> None:
        with self.lock:
            self.users += 1
            if self.users == 1:
                self.queue = queue.SimpleQueue()
                self.thread = threading.Thread(
                    target=self._run, args=(self.queue,), name=self.name, daemon=True
                )
                self.thread.start()

    def close(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users:
                return
            tasks, thread, self.queue, self.thread = self.queue, self.thread, None, None
        tasks.put(None)  # after every request already handed in
        thread.join()

    def submit(self, request):
        """``request``'s result, once written; the writer's error is raised here."""
        tasks = self.queue
        if tasks is None:
            raise RuntimeError(f"The {self.name} is not running.")
        slot = _Slot(request)
        tasks.put(slot)
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run(self, tasks: queue.SimpleQueue) -> None:
        try:
            stopping = False
            while not stopping:
                first = tasks.get()
                if first is None:
                    break
                group = [first]
                while len(group) < MAX_GROUP:
                    try:
                        slot = tasks.get_nowait()
                    except queue.Empty:
                        break
                    if slot is None:
                        stopping = True
                        break
                    group.append(slot)
                self._write(group)
        finally:
            connections.close_all()

    def _write(self, group: list[_Slot]) -> None:
        try:
            results = self.write_group([slot.request for slot in group])
            for slot, result in zip(group, results, strict=True):
                slot.result = result
        except BaseException as exc:  # each caller sees it, as it would have seen its own write's
            logger.warning("The %s could not write %d requests: %r", self.name, len(group), exc)
            for slot in group:
                slot.error = exc
            # A broken connection is opened afresh for the next group.
            connections[SANDBOX_DB].close_if_unusable_or_obsolete()
        finally:
            for slot in group:
                slot.done.set()
