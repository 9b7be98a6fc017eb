"""The watch's sender of the notification outbox (deliver/outbox.py).

One thread sends what is due whenever it is poked: at start (what a process that died
left), after each series (a recovered run's notification, or another process's),
after a wake (a kept failure whose retry the sleep made impossible), and every
OUTBOX_EVERY on the watch's clock (a failed send whose next try is due). It never
holds up the loop; at shutdown a send under way is let end, since one cut off could
be sent twice.
"""

from __future__ import annotations

import threading

from runner.clock import Clock
from runner.events import notify
from runner.home import Home
from runner.run.delivery import flush_outbox
from runner.settings import Settings

OUTBOX_EVERY = 60.0  # seconds between looks at the outbox for a send to try again


class OutboxSender:
    def __init__(self, home: Home, settings: Settings, clock: Clock) -> None:
        self.home = home
        self.settings = settings
        self.clock = clock
        self._poked = threading.Event()
        self._stopping = False
        self._last = clock.monotonic()  # when the outbox was last looked at
        self._thread = threading.Thread(target=self._serve, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.poke()

    def poke(self) -> None:
        self._poked.set()

    def poke_if_due(self) -> None:
        if self.clock.monotonic() - self._last >= OUTBOX_EVERY:
            self.poke()

    def stop(self, grace: float) -> None:
        """Stop after the send under way, waiting at most `grace` seconds for it."""
        self._stopping = True
        self._poked.set()
        if self._thread.is_alive():
            self._thread.join(grace)

    def _serve(self) -> None:
        while True:
            self._poked.wait()
            self._poked.clear()
            if self._stopping:
                return
            self._last = self.clock.monotonic()
            try:
                flush_outbox(self.home, self.settings, self.clock, notify)
            except Exception as exc:  # a daemon's sender must outlive a bug: say it, go on
                notify(f"the notification outbox could not be sent: {exc!r}")
