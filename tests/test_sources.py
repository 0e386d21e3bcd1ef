"""Dataset readers, label converters and DISFA+ extraction, on tiny trees."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from data_pipeline import labels, prepare
from data_pipeline.sources import ck_plus, disfa_plus, list_files
from data_pipeline.sources.base import (
  BP4D_AUS,
  DISFA_AUS,
  DISFA_PLUS_AUS,
  DataError,
)

# --- label converters ------------------------------------------------------


def test_label_converters():
  np.testing.assert_array_equal(labels.from_plus_minus_one([1, -1]), [1, -1])
  np.testing.assert_array_equal(
    labels.from_zero_one([0, 1, 9], unknown=9), [-1, 1, 0]
  )
  np.testing.assert_array_equal(
    labels.from_intensity([0, 1, 2, 5], threshold=2), [-1, -1, 1, 1]
  )
  np.testing.assert_array_equal(
    labels.from_intensity([2, 3], threshold=3), [-1, 1]
  )
  assert labels.from_zero_one([1]).dtype == np.int8


@pytest.mark.parametrize(
  "convert, value",
  [
    (labels.from_plus_minus_one, 0),
    (labels.from_zero_one, 9),
    (labels.from_intensity, 6),
    (labels.from_intensity, -1),
    (labels.from_intensity, 2.5),
  ],
)
def test_label_converters_reject_values_outside_the_convention(convert, value):
  with pytest.raises(DataError, match=r"lab\.txt.*" + str(value)):
    convert([1, value], source="lab.txt")


def test_intensity_values_keep_0_to_5_and_mask_the_unknown_code():
  values = labels.intensity_values([0, 1, 5, 9, 2.0], unknown=9)
  np.testing.assert_array_equal(values, [0, 1, 5, -1, 2])
  assert values.dtype == np.int8
  np.testing.assert_array_equal(labels.intensity_values([[3, 0]]), [[3, 0]])
  for value, allowed in [(6, "0..5"), (-1, "0..5"), (2.5, "0..5 or 9")]:
    with pytest.raises(
      DataError, match=f"^i.txt: intensity {value} .*{allowed}"
    ):
      labels.intensity_values(
        [1, value], source="i.txt", unknown=9 if value == 2.5 else None
      )
  with pytest.raises(DataError, match="intensity 9 "):
    labels.intensity_values([9])  # 9 is unknown only where a reader says so


def test_convert_rows_names_the_line():
  with pytest.raises(DataError, match=r"f\.txt:7: label value 3"):
    labels.convert_rows(labels.from_zero_one, [[0, 1], [1, 3]], [4, 7], "f.txt")


# --- DISFA+ -----------------------------------------------------------------

TRIALS = ("A2_AU2_TrailNo_1", "A10_AU12_TrailNo_1")  # natural order: A2, A10
FRAMES = ("000", "001", "002")


def _intensity(subject: str, trial: str, frame: str, au_index: int) -> int:
  return (int(subject[2:]) + TRIALS.index(trial) + int(frame) + au_index) % 6


def _face(subject: str, trial: str, frame: str) -> np.ndarray:
  """A 200x200 face whose first pixel says which frame it is."""
  image = np.full((200, 200, 3), 90, np.uint8)
  image[0, 0] = (int(subject[2:]), TRIALS.index(trial), int(frame))
  return image


def make_disfa_plus(
  root: Path,
  subjects=("SN001", "SN003", "SN025"),
  *,
  form: str = "cell",
  nested: bool = False,
) -> Path:
  """A DISFA+ tree; label lines and .mat entries in scrambled order."""
  for subject in subjects:
    inner = Path(subject, subject) if nested else Path(subject)
    for trial in TRIALS:
      label_dir = root / "Labels" / inner / trial
      label_dir.mkdir(parents=True)
      for i, au in enumerate(DISFA_PLUS_AUS):
        order = FRAMES[::-1] if i % 2 else FRAMES
        (label_dir / f"AU{au}.txt").write_text(
          "".join(
            f"{f}.jpg     {_intensity(subject, trial, f, i)}\n" for f in order
          )
          + "\n"
        )
      mat_dir = root / "FaceLandmarks" / inner
      mat_dir.mkdir(parents=True, exist_ok=True)
      frames = FRAMES[1:] + FRAMES[:1]
      if form == "cell":
        entries = np.empty((1, len(frames)), object)
        for k, f in enumerate(frames):
          entries[0, k] = {
            "imgID": f"{f}.jpg",
            "ImgCropped": _face(subject, trial, f),
            "LndPntCropped": np.zeros((49, 2)),
          }
      else:
        entries = np.zeros(
          (1, len(frames)),
          [("imgID", "O"), ("ImgCropped", "O"), ("LndPntCropped", "O")],
        )
        for k, f in enumerate(frames):
          entries[0, k] = (
            f"{f}.jpg",
            _face(subject, trial, f),
            np.zeros((49, 2)),
          )
      scipy.io.savemat(
        mat_dir / f"{trial}_FaceCropped.mat",
        {"FaceImg_CropResize": entries},
        do_compression=True,
      )
  return root


def _reader(root, **kwargs):
  kwargs.setdefault("train_subjects", ("SN003", "SN001"))
  kwargs.setdefault("test_subjects", ("SN025",))
  return disfa_plus.DisfaPlus(root, **kwargs)


def _check_split(reader, split, subjects):
  examples = list(reader.examples(split))
  assert [e.frame_id for e in examples] == [
    f"{s}/{t}/{f}" for s in subjects for t in TRIALS for f in FRAMES
  ]
  for e in examples:
    subject, trial, frame = e.frame_id.split("/")
    assert e.subject == subject
    assert e.image.shape == (200, 200, 3) and e.image.dtype == np.uint8
    assert tuple(e.image[0, 0]) == (
      int(subject[2:]),
      TRIALS.index(trial),
      int(frame),
    )
    expected = [
      1 if _intensity(subject, trial, frame, i) >= 2 else -1 for i in range(12)
    ]
    np.testing.assert_array_equal(e.labels, expected)
    assert e.labels.dtype == np.int8
    np.testing.assert_array_equal(
      e.intensity, [_intensity(subject, trial, frame, i) for i in range(12)]
    )
    assert e.intensity.dtype == np.int8
  return examples


@pytest.mark.parametrize("form, nested", [("cell", False), ("struct", True)])
def test_disfa_plus_reads_the_release_layout(tmp_path, form, nested):
  reader = _reader(make_disfa_plus(tmp_path, form=form, nested=nested))
  assert reader.name == "disfa_plus" and reader.aus == DISFA_PLUS_AUS
  assert reader.splits == ("train", "test")
  _check_split(reader, "train", ["SN001", "SN003"])
  _check_split(reader, "test", ["SN025"])
  assert reader.subject_counts("train") == {"SN001": 6, "SN003": 6}
  assert reader.num_examples("train") == 12
  assert reader.num_examples("test") == 6
  text = reader.describe()
  assert "train: 12 examples" in text and "SN025 6" in text


def test_disfa_plus_threshold_and_default_split(tmp_path):
  make_disfa_plus(tmp_path, subjects=("SN025", "SN027"))
  reader = disfa_plus.DisfaPlus(tmp_path, threshold=4)
  assert reader.subject_counts("test") == {"SN025": 6, "SN027": 6}
  example = next(reader.examples("test"))
  intensities = [_intensity("SN025", TRIALS[0], "000", i) for i in range(12)]
  np.testing.assert_array_equal(
    example.labels, [1 if v >= 4 else -1 for v in intensities]
  )
  np.testing.assert_array_equal(example.intensity, intensities)  # unthresholded
  trial = next(reader.trials("test"))
  assert trial.intensities.shape == (3, 12)
  assert trial.intensities.dtype == np.int8
  np.testing.assert_array_equal(
    trial.labels, np.where(trial.intensities >= 4, 1, -1)
  )
  with pytest.raises(DataError, match="SN001"):
    reader.num_examples("train")  # the default train subjects are absent


def test_prepare_extracts_pngs_and_reruns_incrementally(tmp_path):
  src = make_disfa_plus(tmp_path / "src")
  out = tmp_path / "png"
  assert prepare.extract_disfa_plus(src, out, progress=False) == 18
  assert sorted(p.name for p in (out / "SN001" / TRIALS[0]).iterdir()) == [
    ".done",
    "000.png",
    "001.png",
    "002.png",
  ]
  assert not list(out.rglob("*.partial"))
  assert prepare.extract_disfa_plus(src, out, progress=False) == 0
  (out / "SN003" / TRIALS[1] / "001.png").unlink()
  (out / "SN003" / TRIALS[1] / ".done").unlink()  # as if interrupted
  assert prepare.extract_disfa_plus(src, out, progress=False) == 1
  from_pngs = _check_split(
    _reader(src, image_dir=out), "train", ["SN001", "SN003"]
  )
  from_mats = list(_reader(src).examples("train"))
  for a, b in zip(from_pngs, from_mats):
    np.testing.assert_array_equal(a.image, b.image)


def test_prepare_command_line(tmp_path, capsys):
  src = make_disfa_plus(tmp_path / "src", subjects=("SN001",))
  assert (
    prepare.main(
      ["disfa_plus", "--src", str(src), "--out", str(tmp_path / "out")]
    )
    == 0
  )
  assert "wrote 6 images" in capsys.readouterr().out
  assert prepare.main(["disfa_plus", "--src", str(tmp_path / "nowhere")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1


def test_extracted_faces_inside_the_root_replace_the_mat_files(tmp_path):
  src = make_disfa_plus(tmp_path / "src")
  from_mats = list(_reader(src).examples("train"))
  assert (
    prepare.main(["disfa_plus", "--src", str(src)]) == 0
  )  # to src/FaceImages
  shutil.rmtree(src / disfa_plus.FACES_DIR)
  from_pngs = list(_reader(src).examples("train"))
  assert [e.frame_id for e in from_pngs] == [e.frame_id for e in from_mats]
  for a, b in zip(from_pngs, from_mats):
    np.testing.assert_array_equal(a.image, b.image)


def _label_file(root, subject="SN001", trial=TRIALS[0], au=4):
  return root / "Labels" / subject / trial / f"AU{au}.txt"


def _break_columns(root):
  path = _label_file(root)
  path.write_text("000.jpg 1\n001.jpg 1 7\n002.jpg 0\n")


def _break_missing_frame(root):
  _label_file(root).write_text("000.jpg 1\n002.jpg 0\n")


def _break_value(root):
  _label_file(root).write_text("000.jpg 1\n001.jpg 7\n002.jpg 0\n")


def _break_fraction(root):
  _label_file(root).write_text("000.jpg 1\n001.jpg 2.5\n002.jpg 0\n")


def _break_binary(root):
  _label_file(root).write_bytes(b"000.jpg 1\n\xff\xfe\x00junk\n002.jpg 0\n")


def _break_missing_au_file(root):
  _label_file(root, au=26).unlink()


def _break_missing_mat(root):
  (root / "FaceLandmarks" / "SN001" / f"{TRIALS[0]}_FaceCropped.mat").unlink()


def _break_mat_frame(root):
  entries = np.empty((1, 1), object)
  entries[0, 0] = {
    "imgID": "000.jpg",
    "ImgCropped": _face("SN001", TRIALS[0], "000"),
  }
  scipy.io.savemat(
    root / "FaceLandmarks" / "SN001" / f"{TRIALS[0]}_FaceCropped.mat",
    {"FaceImg_CropResize": entries},
  )


def _break_mat_size(root):
  entries = np.empty((1, 3), object)
  for k, f in enumerate(FRAMES):
    entries[0, k] = {
      "imgID": f"{f}.jpg",
      "ImgCropped": np.zeros((100, 100, 3), np.uint8),
    }
  scipy.io.savemat(
    root / "FaceLandmarks" / "SN001" / f"{TRIALS[0]}_FaceCropped.mat",
    {"FaceImg_CropResize": entries},
  )


def _break_mat_garbage(root):
  (
    root / "FaceLandmarks" / "SN001" / f"{TRIALS[0]}_FaceCropped.mat"
  ).write_bytes(b"not a mat file")


@pytest.mark.parametrize(
  "breaker, message, bad_count",
  [
    (_break_columns, r"AU4\.txt:2: expected 'NNN\.jpg intensity'", 1),
    (_break_missing_frame, r"AU4\.txt: no line for frame 001", 1),
    (
      _break_value,
      r"AU4\.txt:2: intensity 7\.0 is not one of the integers 0\.\.5;",
      1,
    ),
    (
      _break_fraction,
      r"AU4\.txt:2: intensity 2\.5 is not one of the integers",
      1,
    ),
    (_break_binary, r"AU4\.txt:2: expected 'NNN\.jpg intensity'", 1),
    (_break_missing_au_file, r"AU26\.txt: label file missing", 1),
    (
      _break_missing_mat,
      r"A2_AU2_TrailNo_1_FaceCropped\.mat: face file"
      r" missing",
      1,
    ),
    (_break_mat_frame, r"_FaceCropped\.mat: no face for frame 001", 2),
    (_break_mat_size, r"_FaceCropped\.mat frame 000: image is 100x100x3", 3),
    (_break_mat_garbage, r"_FaceCropped\.mat: cannot read", 1),
  ],
)
def test_disfa_plus_bad_input(tmp_path, breaker, message, bad_count):
  breaker(make_disfa_plus(tmp_path, subjects=("SN001",)))
  reader = _reader(tmp_path, train_subjects=("SN001",))
  with pytest.raises(DataError, match=message) as error:
    list(reader.examples("train"))
  assert "\n" not in str(error.value)
  skipping = _reader(tmp_path, train_subjects=("SN001",), skip_bad=True)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    examples = list(skipping.examples("train"))
  assert len(caught) == 1
  assert f"skipped {bad_count} bad input(s)" in str(caught[0].message)
  assert all(e.frame_id.startswith("SN001/") for e in examples)
  assert len(examples) < 6


def test_disfa_plus_bad_pngs(tmp_path):
  src = make_disfa_plus(tmp_path / "src", subjects=("SN001",))
  out = tmp_path / "png"
  prepare.extract_disfa_plus(src, out, progress=False)
  trial = out / "SN001" / TRIALS[1]
  (trial / "000.png").unlink()
  (trial / "001.png").write_bytes(b"\x89PNG broken")
  Image.new("RGB", (64, 64)).save(trial / "002.png")
  reader = _reader(src, train_subjects=("SN001",), image_dir=out)
  with pytest.raises(DataError, match=r"000\.png: image missing"):
    list(reader.examples("train"))
  skipping = _reader(
    src, train_subjects=("SN001",), image_dir=out, skip_bad=True
  )
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    examples = list(skipping.examples("train"))
  assert [str(w.message) for w in caught] == [
    str(caught[0].message)
  ] and "skipped 3" in str(caught[0].message)
  assert len(examples) == 3
  (trial / "000.png").write_bytes((trial / "002.png").read_bytes())
  with pytest.raises(DataError, match=r"000\.png: image is 64x64x3"):
    list(reader.examples("train"))


def test_disfa_plus_missing_folders(tmp_path):
  with pytest.raises(DataError, match="DISFA\\+ root not found"):
    disfa_plus.DisfaPlus(tmp_path / "nowhere")
  make_disfa_plus(tmp_path, subjects=("SN001",))
  reader = _reader(tmp_path, train_subjects=("SN001", "SN009"))
  with pytest.raises(DataError, match=r"SN009: subject folder not found"):
    list(reader.examples("train"))
  with pytest.raises(DataError, match="image folder not found"):
    _reader(tmp_path, image_dir=tmp_path / "no_pngs")
  with pytest.raises(ValueError, match="both splits"):
    _reader(tmp_path, test_subjects=("SN001",))
  with pytest.raises(ValueError, match="unknown split"):
    reader.num_examples("val")


# --- CK+ ----------------------------------------------------------------------


def make_ck_plus(root: Path) -> Path:
  """Two coded sequences, one grayscale, one RGB (CK+ codes every sequence)."""
  rng = np.random.default_rng(0)
  for subject, sequence, coded, mode in [
    ("S005", "001", (1, 2, 5, 27), "L"),
    ("S010", "002", (12, 25), "RGB"),
  ]:
    stem = f"{subject}_{sequence}_00000011"
    images = root / "cohn-kanade-images" / subject / sequence
    images.mkdir(parents=True)
    frame = rng.integers(0, 60, (490, 640), np.uint8)
    frame[200:300, 300:400] = 250  # the face: where the landmarks are
    for k in (1, 11):  # the first and the last (peak) frame
      Image.fromarray(frame).convert(mode).save(
        images / f"{subject}_{sequence}_{k:08d}.png"
      )
    marks = root / "Landmarks" / subject / sequence
    marks.mkdir(parents=True)
    points = np.stack([np.linspace(300, 400, 68), np.linspace(200, 300, 68)], 1)
    (marks / f"{stem}_landmarks.txt").write_text(
      "".join(f"   {x:.7e}   {y:.7e}\n" for x, y in points)
    )
    facs = root / "FACS" / subject / sequence
    facs.mkdir(parents=True)
    (facs / f"{stem}_facs.txt").write_text(
      "".join(f"   {au:.7e}   {4.0:.7e}\n" for au in coded)
    )
  return root


def test_ck_plus_reads_peak_frames(tmp_path):
  reader = ck_plus.CKPlus(make_ck_plus(tmp_path), margin=0.0)
  assert reader.name == "ck_plus" and reader.splits == ("test",)
  assert reader.aus == DISFA_PLUS_AUS
  assert reader.num_examples("test") == 2
  examples = list(reader.examples("test"))
  assert [e.frame_id for e in examples] == [
    "S005/001/S005_001_00000011",
    "S010/002/S010_002_00000011",
  ]
  assert [e.subject for e in examples] == ["S005", "S010"]
  expected = {0: (1, 2, 5), 1: (12, 25)}
  for k, e in enumerate(examples):
    np.testing.assert_array_equal(
      e.labels, [1 if au in expected[k] else -1 for au in DISFA_PLUS_AUS]
    )
    assert e.intensity is None  # CK+'s codes are not the 0..5 scale
    assert e.image.shape == (200, 200, 3) and e.image.dtype == np.uint8
    # With no margin the crop is the bright landmark square.
    assert e.image[20:180, 20:180].min() > 200
    assert (e.image[..., 0] == e.image[..., 2]).all()  # gray stays gray
  wide = next(ck_plus.CKPlus(tmp_path, margin=0.5).examples("test"))
  assert wide.image[:, :40].max() < 100  # dark surroundings now show


@pytest.mark.parametrize(
  "edit, message",
  [
    (
      lambda r: (r / "FACS/S005/001/S005_001_00000011_facs.txt").write_text(
        "1.0e+00 2.0e+00 3.0e+00\n"
      ),
      r"S005_001_00000011_facs\.txt:1:",
    ),
    (
      lambda r: (r / "FACS/S005/001/S005_001_00000011_facs.txt").write_text(
        "1.5e+00 2.0e+00\n"
      ),
      r"_facs\.txt:1: 1\.5 is not an AU",
    ),
    (
      lambda r: (
        r / "Landmarks/S005/001/S005_001_00000011_landmarks.txt"
      ).write_text("1 2\n"),
      r"_landmarks\.txt: 1 landmark lines",
    ),
    (
      lambda r: (
        r / "cohn-kanade-images/S005/001/S005_001_00000011.png"
      ).unlink(),
      r"S005_001_00000011\.png: image missing",
    ),
  ],
)
def test_ck_plus_bad_input(tmp_path, edit, message):
  edit(make_ck_plus(tmp_path))
  with pytest.raises(DataError, match=message):
    list(ck_plus.CKPlus(tmp_path).examples("test"))
  with pytest.warns(UserWarning, match="skipped 1 bad input"):
    examples = list(ck_plus.CKPlus(tmp_path, skip_bad=True).examples())
  assert [e.subject for e in examples] == ["S010"]


def test_ck_plus_names_a_missing_or_empty_facs_folder(tmp_path):
  root = make_ck_plus(tmp_path)
  (root / "FACS/S010/002/S010_002_00000011_facs.txt").unlink()
  with pytest.raises(
    DataError,
    match=r"FACS/S010/002: no \*_facs\.txt for the"
    r" sequence .*cohn-kanade-images/S010/002; restore it",
  ):
    ck_plus.CKPlus(root).num_examples()
  shutil.rmtree(root / "cohn-kanade-images")
  (root / "FACS/S005/001/S005_001_00000011_facs.txt").unlink()
  with pytest.raises(DataError, match=r"FACS: no \*_facs\.txt file in it"):
    ck_plus.CKPlus(root).num_examples()


def test_ck_plus_missing_root(tmp_path):
  with pytest.raises(DataError, match="CK\\+ root not found"):
    ck_plus.CKPlus(tmp_path / "nowhere")


# --- list files ------------------------------------------------------------


def make_lists(
  root: Path,
  prefix: str,
  num_aus: int,
  rows: dict,
  folds=(None,),
  size: int = 200,
) -> Path:
  """`rows[split]`: (relative image path, labels) lines, for every fold."""
  (root / "list").mkdir(parents=True, exist_ok=True)
  for split, lines in rows.items():
    for path, _ in lines:
      image = root / "img" / path
      image.parent.mkdir(parents=True, exist_ok=True)
      Image.new("RGB", (size, size), (len(path), 0, 0)).save(image)
    for fold in folds:
      suffix = f"_fold{fold}" if fold else ""
      (root / "list" / f"{prefix}_{split}_img_path{suffix}.txt").write_text(
        "".join(f"{path}\n" for path, _ in lines)
      )
      (root / "list" / f"{prefix}_{split}_label{suffix}.txt").write_text(
        "".join(" ".join(map(str, l)) + "\n" for _, l in lines)
      )
  return root


BP4D_ROWS = {
  "train": [
    ("M002/T1/0100.jpg", [1, 0, 9] + [0] * 9),
    ("F001/T2/0002.jpg", [0] * 11 + [1]),
  ],
  "test": [("F003/T8/0007.jpg", [9] * 12)],
}


def test_list_files_bp4d_folds_and_unknown_code(tmp_path):
  make_lists(tmp_path, "BP4D", 12, BP4D_ROWS, folds=(1, 2, 3))
  reader = list_files.ListFiles(tmp_path, "bp4d", fold=2)
  assert reader.aus == BP4D_AUS and reader.name == "bp4d_list_fold2"
  assert reader.num_examples("train") == 2
  train = list(reader.examples("train"))
  assert [e.frame_id for e in train] == [
    "M002/T1/0100.jpg",
    "F001/T2/0002.jpg",
  ]  # list order
  assert [e.subject for e in train] == ["M002", "F001"]
  np.testing.assert_array_equal(train[0].labels, [1, -1, 0] + [-1] * 9)
  np.testing.assert_array_equal(train[1].labels, [-1] * 11 + [1])
  assert train[0].image[0, 0, 0] == len("M002/T1/0100.jpg")
  test = list(reader.examples("test"))
  np.testing.assert_array_equal(test[0].labels, [0] * 12)
  with pytest.raises(
    DataError,
    match=r"BP4D_train_img_path\.txt: list file"
    r" missing.*folds found: 1, 2, 3",
  ):
    list_files.ListFiles(tmp_path, "bp4d").num_examples("train")


def test_list_files_disfa_and_disfa_plus(tmp_path):
  make_lists(
    tmp_path,
    "DISFA",
    8,
    {"train": [("SN001/0.png", [1] * 8)], "test": [("SN002/5.png", [0] * 8)]},
    folds=(1,),
  )
  make_lists(
    tmp_path,
    "DISFA_plus",
    12,
    {
      "train": [("SN001/A1/000.png", [1, 0] * 6)],
      "test": [("SN025/A1/000.png", [0] * 12)],
    },
  )
  disfa = list_files.ListFiles(tmp_path, "disfa", fold=1)
  assert disfa.aus == DISFA_AUS
  np.testing.assert_array_equal(next(disfa.examples("train")).labels, [1] * 8)
  plus = list_files.ListFiles(tmp_path, "disfa_plus")
  assert plus.aus == DISFA_PLUS_AUS and plus.name == "disfa_plus_list"
  np.testing.assert_array_equal(
    next(plus.examples("train")).labels, [1, -1] * 6
  )
  with pytest.raises(
    DataError,
    match=r"DISFA_train_label_fold1\.txt:1:"
    r" expected 8 numbers",
  ):
    (tmp_path / "list/DISFA_train_label_fold1.txt").write_text("1 0 1\n")
    list(disfa.examples("train"))
  with pytest.raises(
    DataError,
    match=r"DISFA_plus_test_label\.txt:1: label"
    r" value 9",
  ):
    (tmp_path / "list/DISFA_plus_test_label.txt").write_text(
      " ".join(["9"] * 12) + "\n"
    )
    list(plus.examples("test"))


def test_list_files_bad_input(tmp_path):
  make_lists(tmp_path, "BP4D", 12, BP4D_ROWS)
  reader = list_files.ListFiles(tmp_path, "bp4d")
  (tmp_path / "img/F001/T2/0002.jpg").unlink()
  with pytest.raises(
    DataError,
    match=r"BP4D_train_img_path\.txt:2: .*0002"
    r"\.jpg: image missing",
  ):
    list(reader.examples("train"))
  with pytest.warns(UserWarning, match="skipped 1 bad input"):
    kept = list(
      list_files.ListFiles(tmp_path, "bp4d", skip_bad=True).examples("train")
    )
  assert [e.frame_id for e in kept] == ["M002/T1/0100.jpg"]
  (tmp_path / "list/BP4D_test_label.txt").write_text(
    "0 " * 12 + "\n" * 2 + "1 " * 12 + "\n"
  )
  with pytest.raises(
    DataError,
    match=r"BP4D_test_label\.txt: 2 label lines"
    r" but BP4D_test_img_path\.txt has 1",
  ):
    list(reader.examples("test"))
  with pytest.raises(DataError, match="no list/ and img/"):
    list_files.ListFiles(tmp_path / "img", "bp4d")
  with pytest.raises(ValueError, match="unknown dataset"):
    list_files.ListFiles(tmp_path, "affwild")


def test_list_files_image_size(tmp_path):
  make_lists(
    tmp_path,
    "DISFA_plus",
    12,
    {"train": [("SN001/A1/000.png", [1] * 12)]},
    size=256,
  )
  with pytest.raises(DataError, match=r"000\.png: image is 256x256x3"):
    list(list_files.ListFiles(tmp_path, "disfa_plus").examples("train"))
  resized = next(
    list_files.ListFiles(tmp_path, "disfa_plus", resize=True).examples("train")
  )
  assert resized.image.shape == (200, 200, 3)


def _write_intensities(root: Path, name: str, lines: list[str]) -> Path:
  path = root / "list" / name
  path.write_text("".join(f"{line}\n" for line in lines))
  return path


def test_list_files_read_an_optional_intensity_file(tmp_path):
  make_lists(tmp_path, "BP4D", 12, BP4D_ROWS)
  reader = list_files.ListFiles(tmp_path, "bp4d")
  assert all(e.intensity is None for e in reader.examples("train"))
  _write_intensities(
    tmp_path,
    "BP4D_train_intensity.txt",
    ["3 0 9 " + "0 " * 9, "  ".join(["1"] * 11 + ["5"])],
  )
  train = list(reader.examples("train"))
  np.testing.assert_array_equal(train[0].intensity, [3, 0, -1] + [0] * 9)
  np.testing.assert_array_equal(train[1].intensity, [1] * 11 + [5])
  assert train[0].intensity.dtype == np.int8
  # The occurrence labels stay the label file's.
  np.testing.assert_array_equal(train[0].labels, [1, -1, 0] + [-1] * 9)
  assert next(reader.examples("test")).intensity is None  # no test file


@pytest.mark.parametrize(
  "lines, message",
  [
    (["0 " * 12], r"BP4D_train_intensity\.txt: 1 intensity lines but"),
    (["0 " * 12, "0 " * 11 + "7"], r"intensity\.txt:2: intensity 7\.0 is not"),
    (
      ["0 " * 12, "0 " * 11 + "2.5"],
      r"intensity\.txt:2: intensity 2\.5 is not",
    ),
    (["0 " * 12, "0 " * 11 + "x"], r"intensity\.txt:2: expected 12 integers"),
    (["0 " * 12, "0 " * 11], r"intensity\.txt:2: expected 12 integers"),
  ],
)
def test_list_files_bad_intensity_file(tmp_path, lines, message):
  make_lists(tmp_path, "BP4D", 12, BP4D_ROWS)
  path = _write_intensities(tmp_path, "BP4D_train_intensity.txt", lines)
  reader = list_files.ListFiles(tmp_path, "bp4d")
  with pytest.raises(DataError, match=message) as error:
    next(reader.examples("train"))
  assert str(error.value).startswith(str(path))
  assert "\n" not in str(error.value)
