"""Shared by the test modules: the `slow` marker and the tiny reference run.

Tests marked `slow` train DRML in subprocesses (minutes on 2 cores);
`python -m pytest -m "not slow" tests` leaves them out while iterating.
"""

import pytest

from tests import train_support


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
  """The work directory of the uninterrupted tiny run, made once per session."""
  return train_support.reference(tmp_path_factory)
