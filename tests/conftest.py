"""Shared by the test modules: the markers and the tiny reference run.

Tests marked `slow` take seconds to a minute each on 2 cores (subprocess
trainings, whole networks compiled, the benchmark);
`python -m pytest -m "not slow" tests` leaves them out while iterating.
Tests marked `registry` ask the package index to resolve the install extras
(minutes, and gigabytes of wheels read for CUDA's): they run only when
selected, `python -m pytest -m registry tests`.
"""

import pytest

from drml_jax.runtime import host_memory
from tests import train_support


def pytest_configure(config):  # pylint: disable=unused-argument
  """Test processes run JAX as the commands do (`host_memory.configure()`,
  before any test starts JAX's CPU backend): a step run many times reuses
  its temporary buffer instead of faulting it in anew on each call."""
  host_memory.configure()


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """Every test and every subprocess training shares XLA programs through
  one persistent compilation cache (`train_support.compilation_cache`): the
  same network compiled by several tests, on any pytest-xdist worker, is
  compiled once."""
  import jax  # pylint: disable=import-outside-toplevel

  settings = train_support.compilation_cache(tmp_path_factory)
  with pytest.MonkeyPatch.context() as patch:
    for name, value in settings.items():
      jax.config.update(name.lower(), value)
      patch.setenv(name, str(value))  # for the subprocesses
    yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
  """What the commands keep between runs (exported predictors) goes to the
  session's temporary folder, not the user's cache."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv(
      "DRML_CACHE", str(train_support.base_dir(tmp_path_factory) / "cache")
    )
    yield


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
  """The work directory of the uninterrupted tiny run, made once per session."""
  return train_support.reference(tmp_path_factory)


def _shared_fixture_group(item) -> str | None:
  """The group of a test that reads a fixture made once for several tests:
  the session fixture's name (the reference run), else the module's name.
  One pytest-xdist worker runs each group, so the fixture is made once (each
  worker has its own temporary folder and would make it again)."""
  scopes = {
    name: defs[-1].scope
    for name, defs in item._fixtureinfo.name2fixturedefs.items()  # pylint: disable=protected-access
    if defs
    and not name.startswith("tmp_path")
    and name not in ("compilation_cache", "private_cache")
  }
  session = sorted(n for n, scope in scopes.items() if scope == "session")
  if session:
    return session[0]
  if "module" in scopes.values():
    return item.module.__name__
  return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
  """Groups the tests that share a fixture, skips the registry's unless
  selected, and runs the slow tests that share nothing first: one of those
  left to the end kept one worker busy while the other had nothing to do."""
  registry_selected = "registry" in (config.getoption("markexpr") or "")
  skip = pytest.mark.skip(reason="asks the package index: run with -m registry")
  alone = set()
  for item in items:
    group = _shared_fixture_group(item)
    if group:
      item.add_marker(pytest.mark.xdist_group(group))
    else:
      alone.add(item.nodeid)
    if "registry" in item.keywords and not registry_selected:
      item.add_marker(skip)
  # A stable sort: only tests without shared fixtures move, so each group's
  # and each module's fixtures are still made once.
  items.sort(key=lambda i: not (i.nodeid in alone and "slow" in i.keywords))
