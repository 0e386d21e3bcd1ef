"""What predict imports and keeps between runs: the saved predictor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from skimage import data as skimage_data

from data_pipeline.sources.base import DISFA_PLUS_AUS
from drml_jax.model import factory
from drml_jax.predict import saved_predictor
from drml_jax.runtime import cache
from drml_jax.store import checkpoint
from tests import train_support

# Each test reads, exports and compiles a model: seconds apiece.
pytestmark = pytest.mark.slow

# With the intensity head: the saved predictor keeps its third output.
MODEL_CONFIG = {
  "num_aus": 12,
  "input_size": 66,
  "init": "he",
  "dropout": 0.0,
  "intensity": True,
}
HEAVY = (
  "tensorflow",
  "torch",
  "flax",
  "orbax.checkpoint",
  "matplotlib",
  "jinja2",
  "onnxruntime",  # for --onnx only
  "ray",  # python -m drml_jax.corpus only
)


def _checkpoint(path, seed: int = 3) -> str:
  """A checkpoint directory holding a tiny DRML."""
  checkpoint.save_model(
    path,
    factory.build_model(MODEL_CONFIG, seed=seed),
    MODEL_CONFIG,
    checkpoint.Inputs(aus=DISFA_PLUS_AUS, input_size=66),
  )
  return str(path)


@pytest.fixture
def faces():
  rng = np.random.default_rng(0)
  # One face: the batch-of-1 program that the photo in a subprocess runs
  # too, compiled once into the session's cache.
  return rng.integers(0, 256, (1, 200, 200, 3), dtype=np.uint8)


@pytest.fixture
def private(tmp_path, monkeypatch):
  monkeypatch.setenv(cache.SETTING, str(tmp_path / "cache"))
  return tmp_path / "cache" / "predictors"


def test_the_second_load_is_the_saved_predictor(tmp_path, private, faces):
  run = _checkpoint(tmp_path / "run")
  first = saved_predictor.load_predictor(checkpoint=run)
  saved_predictor.wait_saved()
  [entry] = os.listdir(private)
  second = saved_predictor.load_predictor(checkpoint=run)
  assert isinstance(second.weights[0], type(first.weights[0]))
  assert first.has_intensity and second.has_intensity
  for a, b in zip(first(faces), second(faces), strict=True):
    np.testing.assert_array_equal(a, b)
  assert second(faces).intensities.shape == (1, 12)
  assert (second.aus, second.input_size, second.description) == (
    first.aus,
    first.input_size,
    first.description,
  )
  assert os.listdir(private) == [entry]


def test_a_retrained_model_is_never_served_stale(tmp_path, private, faces):
  run = _checkpoint(tmp_path / "run")
  before = saved_predictor.load_predictor(checkpoint=run)(faces)[0]
  saved_predictor.wait_saved()
  checkpoint.save_model(  # a later step of another model
    run,
    factory.build_model(MODEL_CONFIG, seed=4),
    MODEL_CONFIG,
    checkpoint.Inputs(aus=DISFA_PLUS_AUS, input_size=66),
    step=1,
  )
  after = saved_predictor.load_predictor(checkpoint=run)(faces)[0]
  saved_predictor.wait_saved()
  assert np.abs(after - before).max() > 1e-3
  assert len(os.listdir(private)) == 2


def test_a_change_to_any_source_file_makes_a_new_entry(
  tmp_path, private, monkeypatch
):
  """The key hashes every source file, with no list to keep: the evidence
  program's code and the PyTorch checkpoint reader (outside the list that
  once chose what was hashed) each make a new entry when changed, in a copy
  of the packages that stands in for them."""
  copies = tmp_path / "source"
  for package in saved_predictor.SOURCE_PACKAGES:
    shutil.copytree(
      package,
      copies / os.path.basename(package),
      ignore=shutil.ignore_patterns("__pycache__"),
    )
  monkeypatch.setattr(
    saved_predictor,
    "SOURCE_PACKAGES",
    tuple(
      str(copies / os.path.basename(p)) for p in saved_predictor.SOURCE_PACKAGES
    ),
  )
  run = _checkpoint(tmp_path / "run")

  def entries_after_a_load() -> int:
    saved_predictor.load_predictor(checkpoint=run)
    saved_predictor.wait_saved()
    return len(os.listdir(private))

  assert entries_after_a_load() == 1
  assert entries_after_a_load() == 1  # unchanged: the same entry
  for count, changed in enumerate(
    ("drml_jax/predict/saliency.py", "drml_jax/store/interchange.py"), 2
  ):
    with open(copies / changed, "a") as f:
      f.write("# changed\n")
    assert entries_after_a_load() == count, changed


def test_an_upgraded_library_changes_the_key(monkeypatch):
  before = saved_predictor.entry_key(None, "run", None)
  version = saved_predictor.importlib.metadata.version
  monkeypatch.setattr(
    saved_predictor.importlib.metadata,
    "version",
    lambda name: "9.9.9" if name == "flax" else version(name),
  )
  assert saved_predictor.entry_key(None, "run", None) != before


def test_a_damaged_entry_is_made_again(tmp_path, private, faces):
  run = _checkpoint(tmp_path / "run")
  expected = saved_predictor.load_predictor(checkpoint=run)(faces)[0]
  saved_predictor.wait_saved()
  [entry] = os.listdir(private)
  (private / entry / saved_predictor.PROGRAM).write_bytes(b"damaged")
  again = saved_predictor.load_predictor(checkpoint=run)(faces)[0]
  np.testing.assert_array_equal(again, expected)
  saved_predictor.wait_saved()
  assert len((private / entry / saved_predictor.PROGRAM).read_bytes()) > 1000


def test_the_cache_turned_off_keeps_nothing(tmp_path, monkeypatch, faces):
  monkeypatch.setenv(cache.SETTING, "off")
  run = _checkpoint(tmp_path / "run")
  saved_predictor.load_predictor(checkpoint=run)(faces)
  saved_predictor.wait_saved()
  assert cache.root() is None
  assert not any(name.startswith("cache") for name in os.listdir(tmp_path))


IMPORTS = """
import json, sys
from drml_jax.predict.__main__ import main
status = main(sys.argv[1:] + ["--no-progress"])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def _predict_in_a_process(args: list[str], cache_folder) -> dict:
  """Predict in a fresh process: the session's compilation cache, its own
  predictor cache."""
  environment = {
    **train_support.env(),
    cache.SETTING: str(cache_folder / "drml"),
  }
  done = subprocess.run(
    [sys.executable, "-c", IMPORTS, *args],
    env=environment,
    capture_output=True,
    text=True,
    check=False,
  )
  assert done.returncode == 0, done.stderr
  return json.loads(done.stdout.splitlines()[-1])


def test_predict_imports_no_tensorflow_and_a_warm_run_no_flax(tmp_path):
  """The first run reads the orbax checkpoint (Flax, orbax); the second
  reads the saved predictor only. Neither imports TensorFlow or PyTorch."""
  run = _checkpoint(tmp_path / "run")
  photo = tmp_path / "astronaut.png"
  from PIL import Image  # pylint: disable=import-outside-toplevel

  Image.fromarray(skimage_data.astronaut()).save(photo)
  args = [str(photo), "--checkpoint", run, "--overwrite"]
  cold = _predict_in_a_process(
    [*args, "--out", str(tmp_path / "cold.csv")], tmp_path
  )
  warm = _predict_in_a_process(
    [*args, "--out", str(tmp_path / "warm.csv")], tmp_path
  )
  assert cold["status"] == warm["status"] == 0

  def loaded(result):
    return {
      name
      for name in HEAVY
      if any(m == name or m.startswith(name + ".") for m in result["modules"])
    }

  assert loaded(cold) == {"flax", "orbax.checkpoint"}
  assert loaded(warm) == set()
  assert (tmp_path / "cold.csv").read_text() == (
    tmp_path / "warm.csv"
  ).read_text()
