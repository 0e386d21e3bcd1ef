"""Shared by the test modules: the markers and the tiny reference run.

Tests marked `slow` train DRML in subprocesses (minutes on 2 cores);
`python -m pytest -m "not slow" tests` leaves them out while iterating.
Tests marked `registry` ask the package index to resolve the install extras
(minutes, and gigabytes of wheels read for CUDA's): they run only when
selected, `python -m pytest -m registry tests`.
"""

import pytest

from tests import train_support


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
  """The work directory of the uninterrupted tiny run, made once per session."""
  return train_support.reference(tmp_path_factory)


def pytest_collection_modifyitems(config, items):
  if "registry" in (config.getoption("markexpr") or ""):
    return
  skip = pytest.mark.skip(reason="asks the package index: run with -m registry")
  for item in items:
    if "registry" in item.keywords:
      item.add_marker(skip)
