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
  restored on leaving."""
  received = Received()
  previous = {
    s: signal.signal(s, received.handle)
    for s in (signal.SIGINT, signal.SIGTERM)
  }
  try:
    yield received
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
