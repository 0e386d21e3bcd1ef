"""The synthetic dataset: locality of AU effects, labels, files on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from data_pipeline import prepare, synthetic
from data_pipeline.sources.base import DISFA_PLUS_AUS, DataError

TINY = dict(
  num_train_subjects=2,
  num_test_subjects=1,
  frames_per_subject=20,
  progress=False,
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
  return synthetic.generate(
    tmp_path_factory.mktemp("synth") / "ds", seed=3, **TINY
  )


def _examples(root, split):
  return list(synthetic.source(root).examples(split))


def test_generated_dataset_reads_as_disfa_plus(tiny_root):
  settings = json.loads((tiny_root / synthetic.METADATA).read_text())
  train, test = settings["train_subjects"], settings["test_subjects"]
  assert len(train) == 2 and len(test) == 1 and not set(train) & set(test)
  assert sorted(train + test) == ["SN101", "SN102", "SN103"]
  assert sorted(p.name for p in (tiny_root / "Labels").iterdir()) == sorted(
    train + test
  )
  reader = synthetic.source(tiny_root)
  assert reader.subject_counts("train") == dict.fromkeys(train, 20)
  assert reader.num_examples("test") == 20
  examples = _examples(tiny_root, "train")
  assert len(examples) == 40
  assert {e.subject for e in examples} == set(train)
  first = examples[0]
  assert first.frame_id.startswith(f"{train[0]}/A")
  assert first.frame_id.split("/")[1].endswith("_TrailNo_1")
  assert first.image.shape == (200, 200, 3) and first.image.dtype == np.uint8
  # Labels are the label files' intensities thresholded at 2.
  subject, trial, frame = first.frame_id.split("/")
  for au, label in zip(DISFA_PLUS_AUS, first.labels):
    lines = (
      (tiny_root / "Labels" / subject / trial / f"AU{au}.txt")
      .read_text()
      .splitlines()
    )
    value = int(dict(line.split() for line in lines)[f"{frame}.jpg"])
    assert label == (1 if value >= 2 else -1)


def test_landmarks_are_stored(tiny_root):
  mat = next((tiny_root / "FaceLandmarks").glob("*/*_FaceCropped.mat"))
  entry = scipy.io.loadmat(mat)["FaceImg_CropResize"][0, 0][0, 0]
  assert str(entry["imgID"][0]) == "000.jpg"
  points = entry["LndPntCropped"]
  assert points.shape == (49, 2)
  assert ((points > 20) & (points < 190)).all()  # on the face


def test_generation_is_deterministic(tiny_root, tmp_path):
  again = synthetic.generate(tmp_path / "again", seed=3, **TINY)
  other = synthetic.generate(tmp_path / "other", seed=4, **TINY)
  for split in ("train", "test"):
    a, b = _examples(tiny_root, split), _examples(again, split)
    assert [e.frame_id for e in a] == [e.frame_id for e in b]
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x.image, y.image)
      np.testing.assert_array_equal(x.labels, y.labels)
  a, c = _examples(tiny_root, "train"), _examples(other, "train")
  assert not np.array_equal(a[0].image, c[0].image)
  assert not np.array_equal(
    np.stack([e.labels for e in a]), np.stack([e.labels for e in c])
  )


def test_generate_is_atomic_and_idempotent(tiny_root, tmp_path):
  stamp = (tiny_root / synthetic.METADATA).stat().st_mtime_ns
  assert synthetic.generate(tiny_root, seed=3, **TINY) == tiny_root
  assert (tiny_root / synthetic.METADATA).stat().st_mtime_ns == stamp
  with pytest.raises(DataError, match="something other than this synthetic"):
    synthetic.generate(tiny_root, seed=5, **TINY)
  assert not list(tiny_root.parent.glob(".*partial"))
  leftover = tmp_path / ".fresh.partial"
  (leftover / "Labels").mkdir(parents=True)  # an interrupted earlier run
  root = synthetic.generate(tmp_path / "fresh", seed=1, **TINY)
  assert not leftover.exists() and (root / synthetic.METADATA).exists()
  half = tmp_path / "half"
  (half / "Labels").mkdir(parents=True)
  with pytest.raises(DataError, match="synthetic.json: missing"):
    synthetic.source(half)
  with pytest.raises(DataError, match="something other"):
    synthetic.generate(half, **TINY)


def test_prepare_command_generates(tmp_path, capsys):
  prepare.main(
    [
      "synthetic",
      "--out",
      str(tmp_path / "s"),
      "--seed",
      "2",
      "--train-subjects",
      "1",
      "--test-subjects",
      "1",
      "--frames-per-subject",
      "3",
    ]
  )
  assert "train: 3 examples" in capsys.readouterr().out


def test_base_rates_and_co_occurrence():
  rng = np.random.default_rng(0)
  intensities = np.concatenate(
    [
      values
      for _ in range(60)
      for _, values in synthetic.subject_trials(rng, 200)
    ]
  )
  assert intensities.shape == (12_000, 12)
  assert intensities.min() == 0 and intensities.max() == 5
  positive = intensities >= 2
  rates = positive.mean(axis=0)
  assert ((rates > 0.05) & (rates < 0.35)).all(), rates
  index = {au: i for i, au in enumerate(DISFA_PLUS_AUS)}
  for a, b in [(1, 2), (6, 12), (25, 26)]:
    given = positive[positive[:, index[a]], index[b]].mean()
    assert given > 2 * rates[index[b]], (a, b)


def test_trials_are_smooth():
  rng = np.random.default_rng(1)
  for name, values in synthetic.subject_trials(rng, 200):
    assert name.startswith("A") and name.endswith("_TrailNo_1")
    steps = np.abs(np.diff(values, axis=0))
    assert steps.max() <= 4 and steps.mean() < 0.5
    assert (values[0] <= 2).all()  # trials start near neutral


def _render(face, intensities, nuisance):
  return synthetic.render_face(face, intensities, nuisance).astype(int)


@pytest.mark.parametrize("seed", [0, 1])
def test_each_au_changes_only_its_region(seed):
  rng = np.random.default_rng(seed)
  face = synthetic.sample_identity(rng)
  nuisance = synthetic.sample_nuisance(rng)
  base = rng.integers(0, 6, 12) * (rng.random(12) < 0.4)
  for i, au in enumerate(DISFA_PLUS_AUS):
    region = synthetic.region_mask(au, nuisance)
    assert not (region & ~synthetic.AU_REGIONS[au]).any()
    assert synthetic.AU_REGIONS[au].mean() < 0.3  # a limited part
    images = {}
    for intensity in (0, 1, 2, 5):
      values = base.copy()
      values[i] = intensity
      images[intensity] = _render(face, values, nuisance)
    effects = {}
    for intensity in (1, 2, 5):
      diff = np.abs(images[intensity] - images[0]).max(axis=-1)
      assert not diff[~region].any(), f"AU{au} changed pixels outside"
      effects[intensity] = diff.sum()
    visible = np.abs(images[2] - images[0]).max(axis=-1) > 12
    assert visible.sum() > 150, f"AU{au} at intensity 2 is hard to see"
    assert effects[1] < effects[2] < effects[5], f"AU{au} does not grow"


def test_render_face_is_deterministic_and_checks_input():
  rng = np.random.default_rng(5)
  face, nuisance = (
    synthetic.sample_identity(rng),
    synthetic.sample_nuisance(rng),
  )
  values = [2] * 12
  np.testing.assert_array_equal(
    synthetic.render_face(face, values, nuisance),
    synthetic.render_face(face, values, nuisance),
  )
  other = synthetic.sample_identity(rng)
  assert not np.array_equal(
    synthetic.render_face(face, values), synthetic.render_face(other, values)
  )
  with pytest.raises(ValueError, match="expected 12 intensities"):
    synthetic.render_face(face, [1, 2])
