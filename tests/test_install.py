"""The README's accelerator installs resolve: `pip install -e ".[cuda]"` and
`".[tpu]"` pull jax's plugin for the device, at the pinned jax's version.

Each check asks the package index for a full resolution (`pip install
--dry-run`, nothing installed); the CUDA one fetches ~3 GB of wheels when
the index serves no separate metadata. Run them with `python -m pytest -m
registry tests` (.ci/run does); skipped when the index does not answer.
"""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# extra -> the package that makes jax use the device.
PLUGINS = {"cuda": "jax-cuda12-plugin", "tpu": "libtpu"}

# What pip prints when the index cannot be reached.
UNREACHABLE = (
  "NewConnectionError",
  "Max retries exceeded",
  "Temporary failure in name resolution",
  "Name or service not known",
  "Network is unreachable",
  "Connection refused",
  "ConnectTimeoutError",
  "ReadTimeoutError",
)


def _resolve(extra: str) -> dict[str, str]:
  """The names and versions pip would install for `.[extra]`."""
  try:
    result = subprocess.run(
      [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--ignore-installed",
        "--report",
        "-",
        f".[{extra}]",
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=False,
      timeout=1200,
    )
  except subprocess.TimeoutExpired:
    pytest.skip(f"the package index did not resolve .[{extra}] in 20 min")
  if result.returncode != 0:
    if any(marker in result.stderr for marker in UNREACHABLE):
      pytest.skip("the package index does not answer")
    pytest.fail(f"pip could not resolve .[{extra}]:\n{result.stderr[-3000:]}")
  report = json.loads(result.stdout)
  return {
    item["metadata"]["name"].lower().replace("_", "-"): item["metadata"][
      "version"
    ]
    for item in report["install"]
  }


@pytest.mark.registry
@pytest.mark.parametrize(
  "extra",
  [
    # ~1.5-2 min: the CUDA wheels are fetched to read their metadata.
    "cuda",
    "tpu",  # ~40-50 s
  ],
)
def test_the_extra_resolves_to_jax_and_its_device_plugin(extra):
  packages = _resolve(extra)
  assert packages.get("jax") == "0.10.2", packages.get("jax")
  assert PLUGINS[extra] in packages, sorted(packages)
  if extra == "cuda":
    assert packages[PLUGINS[extra]] == packages["jax"]
