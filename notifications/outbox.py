"""A sender of queued emails on a thread of its own, so that work which queues many (a settlement
run) never renders or sends one in its own transactions or on its own thread.

The worker hands over the ids of the emails it queued, after their transaction committed; the
sender sends them a batch at a time with ``notification_deliver_many``, which claims each email
before sending it, so an email is never sent twice, whoever else (``send_notifications``, another
sender) tries it too. An email the sender did not reach (the process was killed) stays queued and
due, and ``send_notifications`` sends it.
"""

import logging
import queue
import threading

from django.db import connection, connections

from .services import notification_deliver_many

logger = logging.getLogger("notifications")

BATCH = 100
_STOP = object()


class OutboxSender:
    def __init__(self, *, batch: int = BATCH):
        self.batch = batch
        self.ids: queue.SimpleQueue = queue.SimpleQueue()
        self.sent = 0
        self.thread = threading.Thread(target=self._work, name="outbox-sender", daemon=True)
        # Inside a test's own transaction another thread cannot see the rows: send on this one.
        self.threaded = not any(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)

    def __enter__(self) -> "OutboxSender":
        if self.threaded:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Sends what was handed over, then stops."""
        if self.threaded:
            self.ids.put(_STOP)
            self.thread.join()

    def send_later(self, email_ids) -> None:
        """Send these queued emails soon (call it once their transaction has committed)."""
        if not self.threaded:
            self.sent += notification_deliver_many(email_ids=email_ids) if email_ids else 0
            return
        for email_id in email_ids:
            self.ids.put(email_id)

    def _work(self) -> None:
        try:
            done = False
            while not done:
                batch = [self.ids.get()]
                while len(batch) < self.batch:
                    try:
                        batch.append(self.ids.get_nowait())
                    except queue.Empty:
                        break
                if _STOP in batch:
                    done = True
                    batch = [email_id for email_id in batch if email_id is not _STOP]
                    # Anything handed over after the stop was asked for is still sent.
                    while True:
                        try:
                            batch.append(self.ids.get_nowait())
                        except queue.Empty:
                            break
                for start in range(0, len(batch), self.batch):
                    try:
                        self.sent += notification_deliver_many(email_ids=batch[start : start + self.batch])
                    except Exception:  # they stay queued: send_notifications sends them
                        logger.exception(
                            "Sending %s queued emails failed", len(batch[start : start + self.batch])
                        )
        finally:
            connections.close_all()
