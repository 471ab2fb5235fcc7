"""The webhook sender of ``seatgate serve``: :meth:`WebhookService.deliver
<seatgate.core.services.webhooks.WebhookService.deliver>` every ``interval`` seconds, in a thread
of each server process, started and stopped with the app's lifespan.

A thread, not an asyncio task: the sender's database work and HTTP posts are blocking calls (the
same service ``seatgate webhook deliver`` runs), and a thread keeps them off the event loop that
answers checks. Several server processes (``--workers``, several machines) each run one: the
deliveries' leases (PostgreSQL ``FOR UPDATE SKIP LOCKED``) keep two senders off the same delivery.

At shutdown the sender stops waiting, makes one last pass over what is due — bounded by ``drain``
seconds, checked between batches — and ends; a batch it claimed is always posted and recorded, so
nothing stays leased. What is still due then is kept (the deliveries are durable rows) and sent by
the next server or ``seatgate webhook deliver``: nothing is lost.

Log lines name counts and error types, never a URL's secret, a signing secret or a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ...errors import SeatgateError
from ...services.webhooks import DeliveryRun, WebhookService

__all__ = ["WebhookSender"]

logger = logging.getLogger("seatgate.webhooks")

# A post times out after 10 s (the poster's timeout): a last batch may take that long past drain.
_POST_TIMEOUT = 10.0


class WebhookSender:
    """Runs ``webhooks.deliver()`` every ``interval`` seconds (> 0) until :meth:`stop`.

    :param drain: seconds the last pass at shutdown may go on claiming batches.
    :param on_run: told of each run that attempted something (the server's metrics).
    :param monotonic: the timer of ``drain`` (real time: the deadline of a shutdown, not a rule).
    """

    def __init__(
        self,
        webhooks: WebhookService,
        *,
        interval: float,
        drain: float = 5.0,
        on_run: Callable[[DeliveryRun], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._webhooks = webhooks
        self.interval = interval
        self.drain = drain
        self._on_run = on_run
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="seatgate-webhooks", daemon=True)
        self._last_problem = ""
        self.runs = 0  # passes made (tests and logs)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop waiting, make the last pass (at most ``drain`` seconds of new batches), end."""
        self._deadline = self._monotonic() + self.drain
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.drain + _POST_TIMEOUT + 5)
            if self._thread.is_alive():
                logger.warning("webhook sender still busy at shutdown; its deliveries are kept")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._monotonic() > self._deadline

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.interval)
            self._once()
            if stopping:
                return

    def _once(self) -> DeliveryRun | None:
        try:
            run = self._webhooks.deliver(should_stop=self._past_deadline)
        except SeatgateError as exc:  # e.g. no server secret: said once, not every interval
            self._problem(f"{exc.code}: {str(exc).splitlines()[0]}")
            return None
        except Exception as exc:  # a bug or the database away: the type only, and go on
            self._problem(f"webhook sender failed ({type(exc).__name__}); retrying")
            return None
        finally:
            self.runs += 1
        self._last_problem = ""
        if run.attempted:
            if self._on_run is not None:
                self._on_run(run)
            logger.info(
                "webhooks: %d attempted, %d delivered, %d to retry, %d given up%s",
                run.attempted,
                run.delivered,
                run.retrying,
                run.given_up,
                f", endpoints disabled {run.disabled}" if run.disabled else "",
            )
        return run

    def _problem(self, message: str) -> None:
        if message != self._last_problem:
            logger.warning("%s", message)
        self._last_problem = message
