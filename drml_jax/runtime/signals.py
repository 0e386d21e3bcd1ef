"""SIGINT and SIGTERM as requests to stop at a safe point, not as deaths.

with signals.caught() as received:
  for step in steps:
    ...
    if received.signum:  # save, then stop
      break
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading


@dataclasses.dataclass
class Received:
  """Records SIGINT / SIGTERM instead of dying; a second one acts as usual."""

  signum: int | None = None  # the first one received

  def handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signum = signum
    signal.signal(
      signum,
      signal.SIG_DFL
      if signum == signal.SIGTERM
      else signal.default_int_handler,
    )


@contextlib.contextmanager
def caught():
  """Inside, SIGINT and SIGTERM are recorded in the `Received` it yields
  (the caller stops at its next safe point); the handlers before are
  restored on leaving. Handlers are set whatever the process inherited (a
  shell starts a background job with SIGINT ignored). Python delivers
  signals to the main thread only: in another thread nothing is caught."""
  received = Received()
  if threading.current_thread() is not threading.main_thread():
    yield received
    return
  previous = {
    s: signal.signal(s, received.handle)
    for s in (signal.SIGINT, signal.SIGTERM)
  }
  try:
    yield received
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
