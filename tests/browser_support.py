"""Headless Chromium for the page tests: Debian's browser, driven by Playwright.

The tests that use it skip when Playwright or a chromium binary is missing
(`apt-get install chromium`; no browser download). `keep_shot` copies a
screenshot to the folder named by DRML_REPORT_SHOTS, when it is set.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pathlib
import shutil

import pytest


@contextlib.contextmanager
def chromium(*arguments: str):
  """A launched headless Chromium (with `arguments`), or the test skipped."""
  if importlib.util.find_spec("playwright") is None:
    pytest.skip("playwright is not installed (pip install playwright)")
  executable = shutil.which("chromium") or shutil.which("chromium-browser")
  if executable is None:
    pytest.skip("no chromium binary (apt-get install chromium)")
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel

  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
      executable_path=executable, args=list(arguments)
    )
    try:
      yield browser
    finally:
      browser.close()


def keep_shot(name: str, shot: pathlib.Path) -> None:
  """Copies a page's screenshot to DRML_REPORT_SHOTS, when set."""
  folder = os.environ.get("DRML_REPORT_SHOTS")
  if folder:
    os.makedirs(folder, exist_ok=True)
    shutil.copy(shot, os.path.join(folder, f"{name}.png"))
