"""The registry, its TFDS builders and preview, on tiny on-the-fly data."""

import os

import numpy as np
import pytest
import scipy.io
from PIL import Image

from data_pipeline import builders, preview, registry
from data_pipeline.sources.base import BP4D_AUS, DISFA_PLUS_AUS, DataError
from data_pipeline.sources.disfa_plus import DISFA_PLUS_TEST, DISFA_PLUS_TRAIN
from data_pipeline.tf_cpu import tfds
from drml_jax import configs
from drml_jax.train.batches import Batches

tfds.disable_progress_bar()


def write_image(path, value: int, size: int = 200) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def list_layout(root, train_labels: str):
  """BP4D fold 1 in the list-file layout: two train faces, one test face."""
  for name, value in (
    ("F001/a.png", 10),
    ("F001/b.png", 20),
    ("M002/c.png", 30),
  ):
    write_image(root / "img" / name, value)
  lists = root / "list"
  lists.mkdir()
  (lists / "BP4D_train_img_path_fold1.txt").write_text(
    "F001/a.png\nF001/b.png\n"
  )
  (lists / "BP4D_train_label_fold1.txt").write_text(train_labels)
  (lists / "BP4D_test_img_path_fold1.txt").write_text("M002/c.png\n")
  (lists / "BP4D_test_label_fold1.txt").write_text("0 " * 11 + "1\n")
  return root


def ck_plus_layout(root):
  """One coded CK+ sequence: AU 1, 12 and 27 (not a DISFA+ AU)."""
  stem = "S005/001/S005_001_00000011"
  write_image(root / "cohn-kanade-images" / f"{stem}.png", 128, size=300)
  (root / "FACS" / "S005" / "001").mkdir(parents=True)
  (root / "FACS" / f"{stem}_facs.txt").write_text(
    "   1.0000000e+00   2.0000000e+00\n   1.2000000e+01   0.0000000e+00\n"
    "   2.7000000e+01   1.0000000e+00\n"
  )
  (root / "Landmarks" / "S005" / "001").mkdir(parents=True)
  points = [f"{100 + i:.7e} {80 + 2 * i:.7e}" for i in range(68)]
  (root / "Landmarks" / f"{stem}_landmarks.txt").write_text("\n".join(points))
  return root


def disfa_plus_layout(root):
  """Every DISFA+ subject with one trial of two frames; AU1 at intensity 2."""
  for subject in DISFA_PLUS_TRAIN + DISFA_PLUS_TEST:
    trial = root / "Labels" / subject / "A1_AU1_TrailNo_1"
    trial.mkdir(parents=True)
    for au in DISFA_PLUS_AUS:
      (trial / f"AU{au}.txt").write_text(
        f"000.jpg {2 if au == 1 else 0}\n001.jpg {5 if au == 26 else 0}\n"
      )
    cell = np.empty((1, 2), object)
    for i in range(2):
      cell[0, i] = {
        "imgID": f"00{i}.jpg",
        "ImgCropped": np.full((200, 200, 3), i, np.uint8),
        "LndPntCropped": np.zeros((49, 2)),
      }
    faces = root / "FaceLandmarks" / subject
    faces.mkdir(parents=True)
    scipy.io.savemat(
      faces / "A1_AU1_TrailNo_1_FaceCropped.mat", {"FaceImg_CropResize": cell}
    )
  return root


def test_registry_names_drive_every_choice():
  assert registry.names() == (
    "synthetic",
    "disfa_plus",
    "bp4d",
    "disfa",
    "disfa_plus_lists",
    "ck_plus",
  )
  assert registry.names(trainable=True) == (
    "synthetic",
    "disfa_plus",
    "bp4d",
    "disfa",
    "disfa_plus_lists",
  )
  assert registry.names(trainable=False) == ("ck_plus",)
  assert configs.CHOICES["data.dataset"] == registry.names(trainable=True)
  assert registry.check("disfa", 3).folds == (1, 2, 3)
  assert not registry.check("synthetic").folds
  for name in ("bp4d", "disfa"):
    with pytest.raises(
      ValueError, match=f"^--dataset {name} needs --fold 1, 2 or 3 \\(got 0\\)$"
    ):
      registry.check(name, 0)
  for name in ("mnist", "synthetic_au"):  # builder names are not datasets
    with pytest.raises(
      ValueError,
      match=f"^unknown dataset '{name}'; valid:"
      " synthetic, disfa_plus, bp4d, disfa, disfa_plus_lists, ck_plus$",
    ):
      registry.check(name)


def test_unknown_names_list_the_valid_ones(tmp_path):
  with pytest.raises(
    ValueError,
    match="^unknown dataset 'au_lists'; valid:"
    " synthetic, disfa_plus, bp4d, disfa, disfa_plus_lists, ck_plus$",
  ):
    registry.build("au_lists", data_dir=str(tmp_path))
  with pytest.raises(
    ValueError,
    match="^unknown synthetic_au config 'huge'; valid: default, disfa_plus_size, tiny$",
  ):
    registry.build("synthetic", dataset_config="huge", data_dir=str(tmp_path))
  with pytest.raises(
    ValueError,
    match="^unknown disfa_plus config 'x'; valid: threshold1, .*, threshold5$",
  ):
    registry.build("disfa_plus", dataset_config="x", data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="needs --fold 1, 2 or 3 \\(got 4\\)$"):
    registry.build("bp4d", fold=4, data_dir=str(tmp_path))
  with pytest.raises(
    ValueError, match="^unknown ck_plus config 'x'; valid: none$"
  ):
    builders.check_name(
      "ck_plus config", "x", registry.check("ck_plus").builder.builder_configs
    )


@pytest.mark.parametrize(
  "name, fold", [("disfa_plus", 0), ("ck_plus", 0), ("bp4d", 1), ("disfa", 2)]
)
def test_licensed_data_without_a_manual_dir_is_a_one_line_error(
  tmp_path, name, fold
):
  with pytest.raises(
    DataError,
    match=f"^{name} is not built in .* manual_dir"
    " None is not a folder with its data: .* licensed",
  ):
    registry.build(name, fold=fold, data_dir=str(tmp_path))
  (tmp_path / "empty").mkdir()
  with pytest.raises(DataError, match="empty' is not a folder") as error:
    registry.build(
      name,
      fold=fold,
      data_dir=str(tmp_path),
      manual_dir=str(tmp_path / "empty"),
    )
  assert "\n" not in str(error.value)


def test_bad_data_surfaces_as_the_sources_data_error(tmp_path):
  root = list_layout(tmp_path / "bp4d", "1 " * 12 + "\n" + "7 " * 12 + "\n")
  with pytest.raises(DataError) as error:
    registry.build(
      "bp4d", fold=1, data_dir=str(tmp_path / "tfds"), manual_dir=str(root)
    )
  assert str(error.value) == (
    f"{root}/list/BP4D_train_label_fold1.txt:2: label value 7.0 is not one"
    " of {0, 1, 9}; check that the file belongs to this dataset"
  )
  assert not list((tmp_path / "tfds" / "au_lists").glob("bp4d_fold1/*"))


def test_au_lists_builds_with_ignored_labels_and_prints_counts(
  tmp_path, capsys
):
  root = list_layout(tmp_path / "bp4d", "1 0 0 0 0 0 0 0 0 0 0 9\n" * 2)
  (root / "list" / "BP4D_train_intensity_fold1.txt").write_text(
    "3 0 0 0 0 0 0 0 0 0 0 9\n" * 2
  )
  builder = registry.build(
    "bp4d", fold=1, data_dir=str(tmp_path / "tfds"), manual_dir=str(root)
  )
  assert "au_lists train: 2 examples from 1 subjects: F001 2" in (
    capsys.readouterr().out
  )
  assert builder.info.config_name == "bp4d_fold1"
  assert registry.aus(builder) == BP4D_AUS
  assert builder.info.splits["train"].num_examples == 2
  records = list(tfds.as_numpy(builder.as_dataset("train")))
  assert sorted(r["frame_id"] for r in records) == [
    b"F001/a.png",
    b"F001/b.png",
  ]
  for record in records:
    assert record["image"].shape == (200, 200, 3)
    assert record["labels"].dtype == np.int8
    np.testing.assert_array_equal(record["labels"], [1] + [-1] * 10 + [0])
    assert record["intensity"].dtype == np.int8
    np.testing.assert_array_equal(record["intensity"], [3] + [0] * 10 + [-1])
  again = registry.build("bp4d", fold=1, data_dir=str(tmp_path / "tfds"))
  assert again.info.splits["test"].num_examples == 1
  (test,) = tfds.as_numpy(again.as_dataset("test"))  # no intensity file
  np.testing.assert_array_equal(test["intensity"], [-1] * 12)
  assert "examples from" not in capsys.readouterr().out


def test_a_copy_built_before_intensity_is_built_again(tmp_path):
  root = list_layout(tmp_path / "bp4d", "1 0 0 0 0 0 0 0 0 0 0 9\n" * 2)
  data_dir = str(tmp_path / "tfds")
  builder = registry.build(
    "bp4d", fold=1, data_dir=data_dir, manual_dir=str(root)
  )
  assert str(builder.version) == "1.1.0"
  assert "intensity" in builder.info.features
  builder.data_path.rename(builder.data_path.parent / "1.0.0")
  with pytest.raises(DataError, match="^bp4d is not built in"):
    registry.build("bp4d", fold=1, data_dir=data_dir)
  rebuilt = registry.build(
    "bp4d", fold=1, data_dir=data_dir, manual_dir=str(root)
  )
  assert rebuilt.data_path.name == "1.1.0"
  assert rebuilt.info.splits["train"].num_examples == 2


def test_a_built_dataset_is_never_reused_for_another_source(tmp_path):
  root = list_layout(tmp_path / "a", "1 0 0 0 0 0 0 0 0 0 0 9\n" * 2)
  registry.build(
    "bp4d", fold=1, data_dir=str(tmp_path / "tfds"), manual_dir=str(root)
  )
  same = list_layout(tmp_path / "copy", "1 0 0 0 0 0 0 0 0 0 0 9\n" * 2)
  registry.build(
    "bp4d", fold=1, data_dir=str(tmp_path / "tfds"), manual_dir=str(same)
  )  # the same files elsewhere: reused
  other = list_layout(tmp_path / "b", "0 1 0 0 0 0 0 0 0 0 0 9\n" * 2)
  with pytest.raises(
    DataError,
    match="was built from .*/a, whose files"
    " differ from those in .*/b: pass a new --data-dir",
  ) as error:
    registry.build(
      "bp4d", fold=1, data_dir=str(tmp_path / "tfds"), manual_dir=str(other)
    )
  assert "\n" not in str(error.value)


def test_disfa_plus_builds_its_subject_split_at_each_threshold(tmp_path):
  root = disfa_plus_layout(tmp_path / "disfa_plus")
  labels, intensity = {}, {}
  for config in ("threshold2", "threshold3"):
    builder = registry.build(
      "disfa_plus",
      dataset_config=config,
      data_dir=str(tmp_path / "tfds"),
      manual_dir=str(root),
    )
    assert {
      s: builder.info.splits[s].num_examples for s in builder.info.splits
    } == {"train": 14, "test": 4}
    records = list(tfds.as_numpy(builder.as_dataset("test")))
    labels[config] = {r["frame_id"]: r["labels"] for r in records}
    intensity[config] = {r["frame_id"]: r["intensity"] for r in records}
  key = b"SN025/A1_AU1_TrailNo_1/000"
  assert labels["threshold2"][key][0] == 1
  assert labels["threshold3"][key][0] == -1
  assert labels["threshold2"][b"SN027/A1_AU1_TrailNo_1/001"][-1] == 1
  # The intensities are the AU files', whatever the threshold.
  for frames in intensity.values():
    np.testing.assert_array_equal(frames[key], [2] + [0] * 11)
    np.testing.assert_array_equal(
      frames[b"SN027/A1_AU1_TrailNo_1/001"], [0] * 11 + [5]
    )


def test_ck_plus_builds_a_test_split_with_disfa_plus_aus(tmp_path):
  builder = registry.build(
    "ck_plus",
    data_dir=str(tmp_path / "tfds"),
    manual_dir=str(ck_plus_layout(tmp_path / "ck")),
  )
  assert list(builder.info.splits) == ["test"]
  (record,) = tfds.as_numpy(builder.as_dataset("test"))
  expected = [1 if au in (1, 12) else -1 for au in DISFA_PLUS_AUS]
  np.testing.assert_array_equal(record["labels"], expected)
  np.testing.assert_array_equal(record["intensity"], [-1] * 12)  # masked
  assert record["intensity"].dtype == np.int8
  assert record["subject"] == b"S005"

  def source(**kwargs):
    return Batches(
      builder,
      data_shards=1,
      process_index=0,
      process_count=1,
      mode="crop",
      normalization="bgr_mean",
      **kwargs,
    )

  with pytest.raises(
    ValueError,
    match="^ck_plus has no train split to"
    " compute a mean image from; pass the training"
    " dataset's mean$",
  ):
    source()
  evaluation = source(mean=np.full((200, 200, 3), 100, np.float32))
  (batch,) = evaluation.evaluation("test", 1)
  batch = {"image": np.asarray(evaluation.model_inputs(batch))}
  np.testing.assert_array_equal(batch["image"][0, 85, 85], [28, 28, 28])


def test_default_data_dir(monkeypatch):
  monkeypatch.delenv("DRML_DATA_DIR", raising=False)
  assert registry.default_data_dir() == os.path.expanduser(
    "~/.cache/drml/tensorflow_datasets"
  )
  monkeypatch.setenv("DRML_DATA_DIR", "/somewhere/else")
  assert registry.default_data_dir() == "/somewhere/else"


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
  """A data_dir holding the tiny synthetic dataset, built once."""
  data_dir = tmp_path_factory.mktemp("tfds")
  registry.build("synthetic", dataset_config="tiny", data_dir=str(data_dir))
  return data_dir


def test_synthetic_au_generates_under_the_data_dir(synthetic_dir):
  builder = registry.build(
    "synthetic", dataset_config="tiny", data_dir=str(synthetic_dir)
  )
  assert registry.aus(builder) == DISFA_PLUS_AUS
  assert {
    s: builder.info.splits[s].num_examples for s in builder.info.splits
  } == {"train": 16, "test": 8}
  subjects = {
    split: {r["subject"] for r in tfds.as_numpy(builder.as_dataset(split))}
    for split in ("train", "test")
  }
  assert len(subjects["train"]) == 2 and len(subjects["test"]) == 1
  assert (
    synthetic_dir / "downloads" / "synthetic_au" / "tiny" / "synthetic.json"
  ).is_file()


def test_preview_writes_a_grid_and_reports_bad_names_in_one_line(
  synthetic_dir, tmp_path, monkeypatch, capsys
):
  monkeypatch.setenv("DRML_DATA_DIR", str(synthetic_dir))
  out = tmp_path / "grid.png"
  preview.main(["synthetic", "--config", "tiny", "--n", "5", "--out", str(out)])
  assert "wrote 5 synthetic train faces" in capsys.readouterr().out
  assert Image.open(out).size[0] > 300
  assert (
    preview.caption("F001/a.png", np.array([1, -1, 0], np.int8), (1, 2, 4))
    == "F001/a.png\nAU 1 (? 4)"
  )
  with pytest.raises(
    SystemExit,
    match="^error: unknown synthetic_au split 'val'; valid: train, test$",
  ):
    preview.main(["synthetic", "--config", "tiny", "--split", "val"])
  with pytest.raises(
    SystemExit,
    match="^error: unknown dataset"
    " 'synthetic_au'; valid: synthetic, .*, ck_plus$",
  ):
    preview.main(["synthetic_au", "--config", "tiny"])
  with pytest.raises(
    SystemExit,
    match="^error: --out .*/missing/grid.png: folder .*/missing does not exist",
  ):
    preview.main(["synthetic", "--out", str(tmp_path / "missing" / "grid.png")])
  with pytest.raises(SystemExit):
    preview.main(["synthetic", "--n", "0"])
  assert "expected a positive number, got 0" in capsys.readouterr().err


def test_preview_takes_a_fold(tmp_path, capsys):
  root = list_layout(tmp_path / "bp4d", "1 0 0 0 0 0 0 0 0 0 0 9\n" * 2)
  out = tmp_path / "grid.png"
  preview.main(
    [
      "bp4d",
      "--fold",
      "1",
      "--split",
      "test",
      "--out",
      str(out),
      "--data-dir",
      str(tmp_path / "tfds"),
      "--manual-dir",
      str(root),
    ]
  )
  assert "wrote 1 bp4d test faces" in capsys.readouterr().out
  assert out.is_file()
  with pytest.raises(
    SystemExit,
    match="^error: --dataset disfa needs --fold 1, 2 or 3 \\(got 0\\)$",
  ):
    preview.main(["disfa", "--data-dir", str(tmp_path / "tfds")])
