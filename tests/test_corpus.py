"""`python -m drml_jax.corpus` on one local Ray: predict's CSVs, resumed,
exactly once through a killed worker and Ctrl-C, bad inputs refused.

The module starts one Ray instance (2 CPUs) that every run reuses, and a
tiny DRML (test_predict_startup's config) whose predictor is exported into
the session's cache once, before the workers read it.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import psutil  # orbax-checkpoint's dependency
import pytest
from flax import nnx

ray = pytest.importorskip("ray")  # the ray extra: pip install -e ".[ray]"

from data_pipeline.sources.base import DISFA_PLUS_AUS  # noqa: E402
from drml_jax.benchmark import sample_media  # noqa: E402
from drml_jax.corpus import __main__ as corpus  # noqa: E402
from drml_jax.corpus import plan  # noqa: E402
from drml_jax.model import factory  # noqa: E402
from drml_jax.predict import __main__ as predict  # noqa: E402
from drml_jax.predict.saved_predictor import (  # noqa: E402
  load_predictor,
  wait_saved,
)
from drml_jax.store import checkpoint  # noqa: E402
from tests import train_support  # noqa: E402
from tests.test_predict_startup import MODEL_CONFIG  # noqa: E402

# Each run starts Ray workers that load a model: seconds apiece.
pytestmark = pytest.mark.slow

SIZE = (320, 180)  # the clips' frames: small, the faces still found
LONG_FRAMES = 32  # a clip long enough to be killed in the middle of
SHORT_FRAMES = 8
# Each of the two clips a Ctrl-C test interrupts between: seconds apiece,
# so the signal reaches the run during the second on a loaded machine.
CTRL_C_FRAMES = 96
# As tests/test_predict.py: two predictions of the same crops differ in
# float32 sums' order, and the CSV rounds to 6 decimals.
PROBABILITY_ATOL = 1e-5
TIMEOUT_S = 120


def _checkpoint(path) -> str:
  """A checkpoint of the tiny DRML, He-initialised in NumPy: building it
  with Flax compiles each initialiser (15 s on 2 cores)."""
  rng = np.random.default_rng(3)

  def value(path, leaf):
    name = path[-2].key
    if name == "kernel":  # (..., in, out), the region layer's per region
      fan_in = np.prod(leaf.shape[-4:-1] if leaf.ndim == 5 else leaf.shape[:-1])
      return (rng.standard_normal(leaf.shape) * np.sqrt(2 / fan_in)).astype(
        leaf.dtype
      )
    ones = name in ("scale", "var")
    return (np.ones if ones else np.zeros)(leaf.shape, leaf.dtype)

  graphdef, state = nnx.split(
    nnx.eval_shape(lambda: factory.build_model(MODEL_CONFIG))
  )
  checkpoint.save_model(
    path,
    nnx.merge(graphdef, jax.tree_util.tree_map_with_path(value, state)),
    MODEL_CONFIG,
    checkpoint.Inputs(
      aus=DISFA_PLUS_AUS, input_size=MODEL_CONFIG["input_size"]
    ),
  )
  return str(path)


@pytest.fixture(scope="module")
def local_ray():
  """One Ray for the module; the workers import the project from here."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("PYTHONPATH", str(train_support.ROOT))
    ray.init(
      num_cpus=2,
      include_dashboard=False,
      log_to_driver=False,
      object_store_memory=128 * 2**20,
    )
  yield
  ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, local_ray):
  """A folder holding the model and a corpus: a long and a short clip, two
  photos. The model's predictor is in the cache before any worker starts."""
  root = tmp_path_factory.mktemp("corpus")
  model = _checkpoint(root / "model")
  load_predictor(checkpoint=model)
  wait_saved()
  (root / "corpus" / "clips").mkdir(parents=True)
  (root / "corpus" / "photos").mkdir()
  sample_media.write_clip(
    str(root / "corpus" / "clips" / "long.mp4"),
    "one",
    frames=LONG_FRAMES,
    size=SIZE,
  )
  sample_media.write_clip(
    str(root / "corpus" / "clips" / "short.mp4"),
    "two",
    frames=SHORT_FRAMES,
    size=SIZE,
  )
  from PIL import Image  # pylint: disable=import-outside-toplevel

  image, _ = sample_media.face_photos()["astronaut"]
  Image.fromarray(image).save(root / "corpus" / "photos" / "astronaut.png")
  return root


def _corpus(
  argv: list[str], capsys=None, model: str = "model"
) -> tuple[int, str, str]:
  """The command in this process, one worker; its status, stdout, stderr."""
  status = corpus.main(
    [*argv, "--checkpoint", model, "--workers", "1", "--no-progress"]
  )
  out, err = capsys.readouterr() if capsys else ("", "")
  return status, out, err


def _read(path) -> list[dict]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _manifest(out_dir) -> dict[str, dict]:
  return {row["output"]: row for row in _read(out_dir / plan.MANIFEST)}


def _files(out_dir) -> set[str]:
  return {
    os.path.relpath(os.path.join(root, name), out_dir)
    for root, _, names in os.walk(out_dir)
    for name in names
  }


def _assert_same_rows(got: list[dict], expected: list[dict]) -> None:
  """The same cells, AU probabilities and intensities within
  PROBABILITY_ATOL."""
  assert len(got) == len(expected)
  assert list(got[0]) == list(expected[0])
  values = [
    name
    for name in expected[0]
    if name.startswith("AU") and not name.endswith("_c")
  ]
  for a, b in zip(got, expected):
    assert {k: v for k, v in a.items() if k not in values} == {
      k: v for k, v in b.items() if k not in values
    }
    if a["success"] == "1":
      np.testing.assert_allclose(
        [float(a[name]) for name in values],
        [float(b[name]) for name in values],
        atol=PROBABILITY_ATOL,
      )


OUTPUTS = {
  "corpus/clips/long.mp4.csv",
  "corpus/clips/short.mp4.csv",
  "corpus/photos/photos_0001.csv",
}


@pytest.fixture(scope="module")
def first_run(folder):
  """The corpus predicted once, into out/."""
  with pytest.MonkeyPatch.context() as patch:
    patch.chdir(folder)
    status = corpus.main(
      [
        "corpus",
        "--out-dir",
        "out",
        "--checkpoint",
        "model",
        "--parquet",
        "aus.parquet",
        "--report",
        "aus.html",
        "--no-progress",
      ]
    )
  assert status == 0
  return folder / "out"


def test_each_csv_is_predicts_own(folder, first_run, monkeypatch, capsys):
  monkeypatch.chdir(folder)
  assert _files(first_run) == OUTPUTS | {plan.MANIFEST, ".lock"}
  manifest = _manifest(first_run)
  assert {row["status"] for row in manifest.values()} == {"ok"}
  for given, output in [
    ("corpus/clips/long.mp4", "corpus/clips/long.mp4.csv"),
    ("corpus/photos", "corpus/photos/photos_0001.csv"),
  ]:
    expected = folder / "expected.csv"
    assert (
      predict.main(
        [given, "--checkpoint", "model", "--out", str(expected)]
        + ["--overwrite", "--no-progress"]
      )
      == 0
    )
    got = _read(first_run / output)
    _assert_same_rows(got, _read(expected))
    frames = {(row["file"], row["frame"]) for row in got}
    assert manifest[output]["frames"] == str(len(frames))
  # The Parquet table: every CSV's rows, `file` telling them apart.
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel

  table = pq.read_table(folder / "aus.parquet")
  rows = sum(len(_read(first_run / output)) for output in OUTPUTS)
  assert table.num_rows == rows
  assert len(set(table.column("file").to_pylist())) == 3
  # The report page: predict's, of every input, from the CSVs.
  page = (folder / "aus.html").read_text()
  assert f"3 file(s), {LONG_FRAMES + SHORT_FRAMES + 1} frame(s)" in page
  assert all(f"AU timelines of {n}.mp4" in page for n in ("long", "short"))


def test_a_second_run_does_nothing_and_a_deleted_csv_is_redone(
  folder, first_run, tmp_path, monkeypatch, capsys
):
  out = tmp_path / "out"
  shutil.copytree(first_run, out)  # with its files' times
  monkeypatch.chdir(folder)

  def times() -> dict[str, int]:  # but the lock's, which each run takes
    return {n: os.stat(out / n).st_mtime_ns for n in _files(out) - {".lock"}}

  before = times()
  status, printed, _ = _corpus(["corpus", "--out-dir", str(out)], capsys)
  assert status == 0 and "3 from earlier runs" in printed
  assert times() == before

  # A deleted CSV, and one whose manifest row does not say ok, are redone.
  short = out / "corpus/clips/short.mp4.csv"
  expected = short.read_text()
  short.unlink()
  text = (out / plan.MANIFEST).read_text()
  (out / plan.MANIFEST).write_text(
    text.replace(
      "corpus/clips/long.mp4.csv,ok,", "corpus/clips/long.mp4.csv,failed,"
    )
  )
  status, printed, _ = _corpus(["corpus", "--out-dir", str(out)], capsys)
  assert status == 0 and "1 from earlier runs" in printed
  assert short.read_text() == expected
  after = times()
  photos, long = "corpus/photos/photos_0001.csv", "corpus/clips/long.mp4.csv"
  assert after[photos] == before[photos] and after[long] > before[long]
  assert {row["status"] for row in _manifest(out).values()} == {"ok"}


def test_a_corrupt_and_an_empty_video_fail_alone(
  folder, tmp_path, monkeypatch, capsys
):
  monkeypatch.chdir(folder)
  bad = folder / "bad"
  bad.mkdir()
  shutil.copy(folder / "corpus/clips/short.mp4", bad / "good.mp4")
  (bad / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
  (bad / "empty.mp4").write_bytes(b"")
  out = tmp_path / "out"
  status, _, err = _corpus(["bad", "--out-dir", str(out)], capsys)
  assert status == 1
  manifest = _manifest(out)
  assert manifest["bad/good.mp4.csv"]["status"] == "ok"
  assert (out / "bad/good.mp4.csv").is_file()
  reasons = {
    "bad/corrupt.mp4.csv": "bad/corrupt.mp4: cannot open the video",
    "bad/empty.mp4.csv": "bad/empty.mp4: empty file (0 bytes)",
  }
  for output, reason in reasons.items():
    row = manifest[output]
    assert row["status"] == "failed" and row["frames"] == "0"
    assert row["error"].startswith(reason) and "\n" not in row["error"]
    assert f"error: {row['error']}" in err.splitlines()
    assert not (out / output).exists()


def _worker_running_a_unit() -> psutil.Process:
  """The worker process whose title says it runs a unit."""
  deadline = time.monotonic() + TIMEOUT_S
  while time.monotonic() < deadline:
    for process in psutil.process_iter(["cmdline"]):
      if (process.info["cmdline"] or [""])[0].startswith("ray::Worker.run"):
        return process
    time.sleep(0.05)
  raise AssertionError("no worker ran a unit")


def test_a_worker_killed_mid_video_is_retried_and_writes_once(
  folder, first_run, tmp_path, monkeypatch
):
  monkeypatch.chdir(folder)
  out = tmp_path / "out"
  statuses = []
  run = threading.Thread(
    target=lambda: statuses.append(
      _corpus(["corpus/clips/long.mp4", "--out-dir", str(out)])[0]
    )
  )
  run.start()
  worker = _worker_running_a_unit()
  time.sleep(0.25)  # into the unit: the clip takes seconds
  assert not (out / "corpus/clips/long.mp4.csv").exists()
  worker.send_signal(signal.SIGKILL)
  run.join(TIMEOUT_S)
  assert statuses == [0]
  assert not worker.is_running()
  assert _files(out) == {"corpus/clips/long.mp4.csv", plan.MANIFEST, ".lock"}
  assert (out / "corpus/clips/long.mp4.csv").read_text() == (
    first_run / "corpus/clips/long.mp4.csv"
  ).read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_keeps_what_finished_and_the_next_run_does_the_rest(
  folder, tmp_path, monkeypatch, capsys, signum
):
  """SIGINT (Ctrl-C), or SIGTERM, to a run (joined to this module's Ray by its address) while
  the second of two clips is predicted: both clips are long enough that
  the signal, sent once the first one's manifest row is written, reaches
  the run during the second on a loaded machine."""
  monkeypatch.chdir(tmp_path)
  sample_media.write_clip("a.mp4", "one", frames=CTRL_C_FRAMES, size=SIZE)
  shutil.copy("a.mp4", "b.mp4")
  model = str(folder / "model")
  args = ["a.mp4", "b.mp4", "--out-dir", "out"]
  process = subprocess.Popen(
    [sys.executable, "-m", "drml_jax.corpus", *args, "--checkpoint", model]
    + ["--workers", "1"]
    + ["--address", ray.get_runtime_context().gcs_address, "--no-progress"],
    env=train_support.env(),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  out = tmp_path / "out"
  deadline = time.monotonic() + TIMEOUT_S
  while not (out / plan.MANIFEST).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
  process.send_signal(signum)
  printed, err = process.communicate(timeout=TIMEOUT_S)
  assert process.returncode == corpus.INTERRUPTED_EXIT, err
  assert "interrupted: 1 of 2 units done" in printed
  [(first, row)] = _manifest(out).items()
  assert row["status"] == "ok"
  assert _files(out) == {first, plan.MANIFEST, ".lock"}
  done = os.stat(out / first).st_mtime_ns

  status, printed, _ = _corpus(args, capsys, model)
  assert status == 0 and "1 from earlier runs" in printed
  assert os.stat(out / first).st_mtime_ns == done
  assert _files(out) == {"a.mp4.csv", "b.mp4.csv", plan.MANIFEST, ".lock"}


def _closed_port() -> int:
  """A local port nothing listens on."""
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@pytest.mark.parametrize(
  "case, message",
  [
    ("no media", "notes: no image or video among its 1 file (1 .txt)"),
    ("missing", "--list list.txt names 1 path(s) that do not exist, first"),
    ("out-dir a file", "--out-dir taken.txt is a file: pass a folder"),
    ("nobody answers", "--address 127.0.0.1:"),
  ],
)
def test_bad_inputs_are_one_line_and_nothing_is_written(
  folder, tmp_path, monkeypatch, capsys, case, message
):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "a.txt").write_text("not media")
  (tmp_path / "list.txt").write_text(
    f"{folder / 'corpus/clips/short.mp4'}\nmissing.mp4\n"
  )
  (tmp_path / "taken.txt").write_text("a file")
  argv = {
    "no media": ["notes", "--out-dir", "out"],
    "missing": ["--list", "list.txt", "--out-dir", "out"],
    "out-dir a file": [str(folder / "corpus"), "--out-dir", "taken.txt"],
    "nobody answers": [str(folder / "corpus"), "--out-dir", "out"]
    + ["--address", f"127.0.0.1:{_closed_port()}"],
  }[case]
  before = sorted(os.listdir(tmp_path))
  status, printed, err = _corpus(argv, capsys, str(folder / "model"))
  assert status == 2 and printed == ""
  assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
  assert sorted(os.listdir(tmp_path)) == before
