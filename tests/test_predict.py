"""Prediction on photos and videos: same numbers as evaluation, faces, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import jax
import numpy as np
import pytest
import torch
from flax import nnx
from PIL import Image

from data_pipeline import registry, splits
from data_pipeline.model_inputs import ModelInputs
from data_pipeline.tf_cpu import tfds
from drml_jax import convert, evaluate
from drml_jax.benchmark import sample_media
from drml_jax.model import factory, train_state
from drml_jax.predict import __main__ as predict
from drml_jax.predict import programs, saved_predictor, stream
from drml_jax.scoring.metrics import confusion_counts
from drml_jax.store import checkpoint
from drml_jax.store.workdir import CHECKPOINT_DIR, CONFIG_FILE
from drml_jax.train import batches
from tests import train_support as support

INPUT = 66  # a tiny DRML: the pipeline's 170x170 inputs are resized to it
MODEL_CONFIG = {
  "num_aus": 12,
  "input_size": INPUT,
  "init": "he",
  "dropout": 0.0,
  "intensity": True,  # the head on: predict's tests cover its AUxx_r columns
}
# Two predictions of the same crops: the forward passes differ in batch size,
# so XLA's float32 sums differ in order (observed up to 1.4e-6 on these
# spread probabilities), and the CSV rounds to 6 decimals (5e-7).
PROBABILITY_ATOL = 1e-5
# Predict against evaluation: their inputs differ by float32 rounding, a few
# pixels by one level (the first test), which this tiny random model, its
# last layer scaled 30x to spread its outputs, amplifies to 4.5e-4 (measured).
EVALUATION_ATOL = 1e-3
# The CSV's intensities against the model's own `outputs` on the same
# preprocessed faces: 5 x a sigmoid, so 5 x PROBABILITY_ATOL.
INTENSITY_ATOL = 5 * PROBABILITY_ATOL
AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # the tiny dataset's


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """The tiny synthetic dataset (shared with the training tests' session)."""
  return registry.build(
    "synthetic",
    dataset_config="tiny",
    data_dir=str(support.base_dir(tmp_path_factory) / "tfds"),
  )


@pytest.fixture(scope="module")
def model():
  """A random 12-AU DRML whose probabilities spread over (0, 1), and its
  intensities over (0, 5)."""
  drml = factory.build_model(MODEL_CONFIG, seed=3)
  drml.fc3.kernel[...] = drml.fc3.kernel[...] * 30
  drml.fc_intensity.kernel[...] = drml.fc_intensity.kernel[...] * 30
  return drml


def _without_head(drml):
  """The model without its intensity head, every other weight the same."""
  copy = nnx.clone(drml)
  copy.fc_intensity = None
  return copy


def _workdir(
  path,
  builder,
  drml,
  *,
  mode="resize",
  normalization="rgb",
  model_config=MODEL_CONFIG,
):
  """A work directory as drml_jax.train leaves it: config.json and
  checkpoints/, whose step stores the inputs as training stores them."""
  inputs = checkpoint.Inputs(
    aus=registry.aus(builder),
    mode=mode,
    normalization=normalization,
    input_size=INPUT,
    mean=splits.mean_image(builder) if normalization == "bgr_mean" else None,
  )
  checkpoint.save_model(path / CHECKPOINT_DIR, drml, model_config, inputs)
  (path / CONFIG_FILE).write_text(
    json.dumps(
      {
        "data": {
          "dataset": "synthetic",
          "dataset_config": "tiny",
          "fold": 0,
          "manual_dir": "",
          "data_dir": str(builder.data_dir_root),
          "mode": mode,
          "normalization": normalization,
        }
      }
    )
  )
  return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny, model):
  return _workdir(tmp_path_factory.mktemp("predict_run"), tiny, model)


@pytest.fixture(scope="module")
def test_split(tiny, tmp_path_factory):
  """The test split's faces as PNG files in evaluation order, with their labels."""
  folder = tmp_path_factory.mktemp("test_faces")
  records = list(tfds.as_numpy(tiny.as_dataset("test", shuffle_files=False)))
  for i, record in enumerate(records):
    Image.fromarray(record["image"]).save(folder / f"{i:03d}.png")
  return (
    folder,
    np.stack([r["image"] for r in records]),
    np.stack([r["labels"] for r in records]),
  )


def _read_csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _au_values(rows, suffix=""):
  names = [f"AU{au:02d}{suffix}" for au in AUS]
  return np.array([[float(row[name]) for name in names] for row in rows])


def _predict(argv, capsys):
  status = predict.main([*argv, "--no-progress"])
  out, err = capsys.readouterr()
  return status, out, err


@pytest.mark.parametrize(
  "mode,normalization,level",
  [("resize", "rgb", 1 / 255), ("crop", "bgr_mean", 1.0)],
)
def test_preprocessing_is_evaluations_up_to_float_rounding(
  tiny, test_split, mode, normalization, level
):
  """Predict's JAX preprocessing against the TensorFlow pipeline's.

  The resize sums run in another order than TensorFlow's (float32 rounding,
  6e-5 of 255 at most), so a pixel on a rounding boundary can land one
  level off: `level` in each normalization's units, then resized to the tiny
  model's input (which averages it down). Crop mode has no rounding: only
  the mean image's float32 resize differs.
  """
  _, images, _ = test_split
  mean = splits.mean_image(tiny) if normalization == "bgr_mean" else None
  ours = np.asarray(
    ModelInputs(mode, normalization, mean=mean, input_size=INPUT).faces(images)
  )
  source = batches.Batches(
    tiny,
    data_shards=1,
    process_index=0,
    process_count=1,
    mode=mode,
    normalization=normalization,
    input_size=INPUT,
  )
  evaluation = np.concatenate(
    [
      np.asarray(source.model_inputs(b))[b["valid"]]
      for b in source.evaluation("test", 8)
    ]
  )
  difference = np.abs(ours - evaluation)
  assert difference.max() <= level, difference.max()
  assert difference.mean() < 1e-3 * level, "rounding flips are rare"


def _assert_uses_the_mean_image(loaded, model, tiny, faces):
  """`loaded` predicts as the model does with the training split's mean."""
  expected = programs.predictor_of(
    model,
    loaded.aus,
    mode=loaded.mode,
    normalization=loaded.normalization,
    mean=splits.mean_image(tiny),
    input_size=INPUT,
  )(faces)[0]
  np.testing.assert_allclose(loaded(faces)[0], expected, atol=PROBABILITY_ATOL)


@pytest.mark.slow  # compiles two predictors
def test_a_workdir_gives_its_preprocessing_and_its_datasets_aus(
  tiny, model, test_split, tmp_path
):
  run = _workdir(tmp_path, tiny, model, mode="crop", normalization="bgr_mean")
  loaded = saved_predictor.load_predictor(workdir=str(run), batch_size=4)
  assert (loaded.mode, loaded.normalization, loaded.input_size) == (
    "crop",
    "bgr_mean",
    INPUT,
  )
  _assert_uses_the_mean_image(loaded, model, tiny, test_split[1][:3])
  assert (
    loaded.aus == registry.aus(tiny)
    and loaded.thresholds.tolist() == [0.5] * 12
  )


def _without_its_dataset(run):
  """The work directory as if copied to a machine without its dataset: its
  config names a data folder that does not exist."""
  config = json.loads((run / CONFIG_FILE).read_text())
  config["data"]["data_dir"] = str(run / "no_such_data_dir")
  (run / CONFIG_FILE).write_text(json.dumps(config))
  return run


@pytest.mark.slow
def test_a_workdir_without_its_dataset_predicts_evaluates_and_converts(
  tiny, model, test_split, tmp_path, capsys
):
  run = _without_its_dataset(
    _workdir(tmp_path / "run", tiny, model, normalization="bgr_mean")
  )
  loaded = saved_predictor.load_predictor(workdir=str(run), batch_size=4)
  _assert_uses_the_mean_image(loaded, model, tiny, test_split[1][:3])
  assert loaded.aus == registry.aus(tiny)

  folder, _, _ = test_split
  out = tmp_path / "predictions.csv"
  status, _, err = _predict(
    [str(folder), "--workdir", str(run), "--faces", "aligned"]
    + ["--out", str(out), "--batch-size", "4"],  # the program just compiled
    capsys,
  )
  assert status == 0, err
  assert len(_read_csv(out)) == 8

  # Another dataset's folder (the tiny dataset's, elsewhere than the run's).
  status = evaluate.main(
    ["--workdir", str(run), "--data-dir", str(tiny.data_dir_root)]
    + ["--output", str(tmp_path / "eval.json")]
  )
  assert status == 0, capsys.readouterr().err
  result = json.loads((tmp_path / "eval.json").read_text())
  assert result["num_examples"] == 8

  assert (
    convert.main(
      ["orbax-to-torch", str(run / CHECKPOINT_DIR), str(tmp_path / "m.pth")]
    )
    == 0
  )
  assert (tmp_path / "m.pth").is_file()


@pytest.mark.slow  # compiles two predictors
def test_a_checkpoint_from_before_stored_inputs_reads_its_runs_dataset(
  tiny, model, test_split, tmp_path, capsys
):
  """An old checkpoint: no inputs stored, and no intensity head (its
  model_config has no "intensity"), so predict writes the columns it always
  did and refuses --intensity in one line."""
  old_config = {k: v for k, v in MODEL_CONFIG.items() if k != "intensity"}
  run = _workdir(
    tmp_path,
    tiny,
    _without_head(model),
    mode="crop",
    normalization="bgr_mean",
    model_config=old_config,
  )
  shutil.rmtree(run / CHECKPOINT_DIR / "0" / checkpoint.INPUTS_ITEM)
  shutil.rmtree(run / CHECKPOINT_DIR / "0" / checkpoint.MEAN_ITEM)
  loaded = saved_predictor.load_predictor(workdir=str(run), batch_size=4)
  assert (loaded.mode, loaded.normalization, loaded.aus) == (
    "crop",
    "bgr_mean",
    registry.aus(tiny),
  )
  # The headed model's probabilities: the head changes no other output.
  _assert_uses_the_mean_image(loaded, model, tiny, test_split[1][:3])
  assert not loaded.has_intensity
  assert loaded(test_split[1][:1]).intensities is None

  folder = test_split[0]
  out = tmp_path / "old.csv"
  argv = [str(folder), "--workdir", str(run), "--faces", "aligned"]
  argv += ["--out", str(out), "--batch-size", "4"]  # the program compiled
  status, stdout, err = _predict([*argv, "--intensity"], capsys)
  assert status == 2 and not stdout and not out.exists()
  assert err.count("\n") == 1 and err.startswith("error: --intensity: "), err
  assert f"{run / CHECKPOINT_DIR} (step 0) has no intensity head" in err
  assert "train a model with one (python -m drml_jax.train --intensity)" in err
  status, _, err = _predict(argv, capsys)
  assert status == 0, err
  assert list(_read_csv(out)[0]) == list(stream.COLUMNS) + [
    f"AU{au:02d}{suffix}" for suffix in ("", "_c") for au in AUS
  ]


@pytest.mark.slow
def test_aligned_faces_get_evaluations_probabilities_and_counts(
  workdir, tiny, model, test_split, tmp_path, capsys
):
  folder, _, labels = test_split
  out = tmp_path / "predictions.csv"
  status, _, err = _predict(
    [
      str(folder),
      "--workdir",
      str(workdir),
      "--faces",
      "aligned",
      "--out",
      str(out),
      "--batch-size",  # two full batches: one program
      "4",
    ],
    capsys,
  )
  assert status == 0, err
  rows = _read_csv(out)
  assert [row["file"] for row in rows] == [
    str(folder / f"{i:03d}.png") for i in range(8)
  ]
  assert {row["success"] for row in rows} == {"1"}
  probabilities, occurrences = (
    _au_values(rows),
    _au_values(rows, "_c").astype(bool),
  )

  graphdefs, state = train_state.split(model)  # evaluation's forward pass
  forward = jax.jit(
    lambda state, batch: train_state.merge(graphdefs.eval, state)(
      source.model_inputs(batch)
    )
  )
  source = batches.Batches(
    tiny,
    data_shards=1,
    process_index=0,
    process_count=1,
    mode="resize",
    normalization="rgb",
    input_size=INPUT,
  )
  logits = np.concatenate(
    [
      np.asarray(forward(state, b))[b["valid"]]
      for b in source.evaluation("test", 8)
    ]
  )
  np.testing.assert_allclose(
    probabilities, 1 / (1 + np.exp(-logits)), atol=EVALUATION_ATOL
  )
  assert 0.05 < probabilities.mean() < 0.95 and probabilities.std() > 0.1
  # No probability this close to 0.5, so the occurrences must agree exactly.
  assert np.abs(probabilities - 0.5).min() > EVALUATION_ATOL
  np.testing.assert_array_equal(occurrences, logits > 0)

  # The intensity head's AUxx_r columns, after the occurrences: the model's
  # own intensities on the same faces, preprocessed as predict does.
  header = list(rows[0])
  assert header[-36:] == [
    f"AU{au:02d}{suffix}" for suffix in ("", "_c", "_r") for au in AUS
  ]
  intensities = _au_values(rows, "_r")
  faces = ModelInputs("resize", "rgb", input_size=INPUT).faces(test_split[1])
  expected = np.asarray(
    train_state.merge(graphdefs.eval, state).outputs(faces).intensity
  )
  np.testing.assert_allclose(intensities, expected, atol=INTENSITY_ATOL)
  assert 0 <= intensities.min() and intensities.max() <= 5
  assert intensities.std() > 0.5, "spread over the scale, not saturated"

  report = tmp_path / "eval.json"
  assert (
    evaluate.main(["--workdir", str(workdir), "--output", str(report)]) == 0
  )
  counts = confusion_counts(np.where(occurrences, 1.0, -1.0), labels)
  assert json.loads(report.read_text())["counts"] == np.asarray(counts).tolist()


@pytest.mark.slow
def test_video_rows_frames_timestamps_and_detected_faces(
  workdir, tmp_path, capsys
):
  fps = 10.0
  video = str(tmp_path / "clip.mp4")
  truth = sample_media.write_clip(video, "two", frames=9, fps=fps)
  out = tmp_path / "video.csv"
  status, _, err = _predict(
    [video, "--workdir", str(workdir), "--out", str(out), "--plot"]
    + ["--batch-size", "2"],  # two faces a frame: one program
    capsys,
  )
  assert status == 0, err
  rows = _read_csv(out)
  frames = sorted({int(row["frame"]) for row in rows})
  assert frames == list(range(9))
  assert sorted({float(row["timestamp_s"]) for row in rows}) == [
    round(i / fps, 3) for i in range(9)
  ]
  assert (tmp_path / "video_clip.png").stat().st_size > 0
  detected = [row for row in rows if row["success"] == "1"]
  assert len(detected) >= 0.9 * sum(map(len, truth)), "both, most frames"
  assert all(row["AU01"] == "" for row in rows if row["success"] == "0")
  # One id a person: 0 the astronaut on the left, 1 Grace Hopper.
  for row in detected:
    [(person, box)] = [
      (person, box)
      for person, box in truth[int(row["frame"])]
      if abs(box.cx - int(row["face_x"]) - int(row["face_w"]) / 2) < box.side
    ]
    assert int(row["face_id"]) == person
    assert abs(float(row["face_roll"])) < 20
    # The eye centres lie in the face's upper half, the mouth in its lower.
    top, side = int(row["face_y"]), int(row["face_w"])
    assert top < float(row["y_36_41"]) < top + side / 2 < float(row["y_48"])
    assert 0 <= float(row["AU01"]) <= 1 and row["AU01_c"] in ("0", "1")

  every = tmp_path / "every.csv"  # a bare checkpoint, its AUs named: BP4D's
  assert (
    _predict(
      [
        video,
        "--checkpoint",
        str(workdir / "checkpoints"),
        "--out",
        str(every),
        "--every",
        "4",
        "--aus",
        "1,2,4,6,7,10,12,14,15,17,23,24",
        "--batch-size",
        "2",
      ],
      capsys,
    )[0]
    == 0
  )
  rows = _read_csv(every)
  assert sorted({(row["frame"], row["timestamp_s"]) for row in rows}) == [
    ("0", "0.000"),
    ("4", "0.400"),
    ("8", "0.800"),
  ]
  assert (
    list(rows[0])[len(stream.COLUMNS) :][:3] == ["AU01", "AU02", "AU04"]
    and "AU23_c" in rows[0]
  )


def test_bad_inputs_are_named_in_one_line_and_the_rest_is_predicted(
  workdir, test_split, tmp_path, capsys
):
  folder, _, _ = test_split
  good = str(folder / "000.png")
  broken_image = tmp_path / "broken.png"
  broken_image.write_bytes(b"not a png")
  broken_video = tmp_path / "broken.mp4"
  broken_video.write_bytes(b"not a video")
  notes = tmp_path / "notes.txt"
  notes.write_text("hello")
  empty = tmp_path / "empty"
  empty.mkdir()
  empty_video = tmp_path / "empty.mp4"
  empty_video.write_bytes(b"")
  no_media = tmp_path / "no_media"
  no_media.mkdir()
  for i in range(20):
    (no_media / f"{i}.txt").write_text("not an image")
  bad = [
    str(broken_image),
    str(broken_video),
    str(notes),
    str(empty),
    str(tmp_path / "gone.jpg"),
    str(empty_video),
    str(no_media),
  ]
  out = tmp_path / "out.csv"
  status, _, err = _predict(
    [
      good,
      *bad,
      "--workdir",
      str(workdir),
      "--faces",
      "aligned",
      "--out",
      str(out),
      "--plot",
      "--batch-size",  # the good file's one face: one program to compile
      "1",
    ],
    capsys,
  )
  assert status == 1
  lines = err.splitlines()
  assert len(lines) == len(bad) and all(
    line.startswith("error: ") for line in lines
  ), err
  for path in bad:
    assert sum(path + ":" in line for line in lines) == 1, (path, err)
  assert [row["file"] for row in _read_csv(out)] == [good]
  assert (tmp_path / "out_faces.png").exists()

  before = out.read_bytes()
  assert _predict([good, "--workdir", str(workdir), "--out", str(out)], capsys)[
    2
  ].startswith(f"error: {out} already exists: pass --overwrite")
  assert out.read_bytes() == before

  status, _, err = _predict(
    [
      *bad,
      "--workdir",
      str(workdir),
      "--faces",
      "aligned",
      "--out",
      str(tmp_path / "none.csv"),
    ],
    capsys,
  )
  assert status == 2 and len(err.splitlines()) == len(bad)
  assert not (tmp_path / "none.csv").exists()


def test_checkpoints_that_are_not_drml_fail_in_one_line(
  workdir, test_split, tmp_path, capsys
):
  good = str(test_split[0] / "000.png")
  not_drml = tmp_path / "resnet.pth"
  torch.save(torch.nn.Linear(3, 2).state_dict(), not_drml)
  garbage = tmp_path / "garbage.pth"
  garbage.write_bytes(b"not a checkpoint")
  cases = [
    (["--checkpoint", str(not_drml)], f"{not_drml}: not a DRML state_dict"),
    (
      ["--checkpoint", str(garbage)],
      f"{garbage} is not a readable PyTorch checkpoint",
    ),
    (
      ["--checkpoint", str(tmp_path)],
      f"{tmp_path} is not a readable orbax DRML checkpoint",
    ),
    (
      ["--checkpoint", str(tmp_path / "gone")],
      f"no checkpoint at {tmp_path / 'gone'}",
    ),
    (
      ["--workdir", str(tmp_path)],
      f"{tmp_path} is not a training work directory",
    ),
    (
      ["--workdir", str(workdir), "--aus", "1,2"],
      f"{workdir / 'checkpoints'} predicts 12 AUs but --aus names 2",
    ),
  ]
  for argv, message in cases:
    status, _, err = _predict(
      [good, *argv, "--out", str(tmp_path / "x.csv")], capsys
    )
    assert status == 2, argv
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_bad_arguments_fail_in_one_line(capsys):
  for argv in (
    ["x.png", "--checkpoint", "c", "--every", "0"],
    ["x.png", "--checkpoint", "c", "--aus", "1,two"],
    ["x.png"],
  ):
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
