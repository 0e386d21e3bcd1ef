"""The tf.data pipeline on a tiny fake dataset whose pixels say where they are.

Channel 0 of every face is the column (0..199), channel 1 the row, channel 2
the example's number, so a batch tells which example, crop and mirror it is.
Batches leave the pipeline as uint8 images and crop windows; `batches` makes
the model's inputs from them as the jitted steps do (`ModelInputs`). Every
face has the labels [1, -1, 0] and the intensities [3, 0, unknown]; the
tiny synthetic dataset has the intensities of its AU files.
"""

import numpy as np
import pytest
from PIL import Image

from data_pipeline import model_inputs, pipeline, registry, splits
from data_pipeline.builders.base import SourceBuilder
from data_pipeline.model_inputs import ModelInputs
from data_pipeline.sources.base import UNKNOWN_INTENSITY, Example
from data_pipeline.tf_cpu import tfds

NUM_TRAIN, NUM_TEST = 12, 5
TEST_OFFSET = 100  # test examples are numbered from here
LABELS = [1, -1, 0]
INTENSITY = [3, 0, UNKNOWN_INTENSITY]


def face(number: int) -> np.ndarray:
  image = np.empty((200, 200, 3), np.uint8)
  image[..., 0] = np.arange(200)[None, :]
  image[..., 1] = np.arange(200)[:, None]
  image[..., 2] = number
  return image


class CoordinateFaces:
  name = "coordinate_faces"
  aus = (1, 2, 4)
  splits = ("train", "test")

  def examples(self, split):
    count, first = (
      (NUM_TRAIN, 0) if split == "train" else (NUM_TEST, TEST_OFFSET)
    )
    for number in range(first, first + count):
      yield Example(
        face(number),
        np.array(LABELS, np.int8),
        f"S{number % 2}",
        f"{split}/{number:03d}",
        intensity=np.array(INTENSITY, np.int8),
      )


class CoordinateFacesBuilder(SourceBuilder, skip_registration=True):
  aus = CoordinateFaces.aus

  def _source(self, dl_manager):
    return CoordinateFaces()


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
  tfds.disable_progress_bar()
  built = CoordinateFacesBuilder(data_dir=str(tmp_path_factory.mktemp("tfds")))
  built.download_and_prepare()
  return built


def raw_batches(builder, split="train", **kwargs):
  """The pipeline's own batches: uint8 images and crop windows."""
  kwargs = {
    "batch_size": 4,
    "train": split == "train",
    "num_epochs": 2,
    "process_index": 0,
    "process_count": 1,
    **kwargs,
  }
  return list(pipeline.make_dataset(builder, split, **kwargs))


def batches(builder, split="train", normalization="rgb", mean=None, **kwargs):
  """Batches with "image" the model's float32 inputs."""
  mode = kwargs.get("mode", "resize")
  if normalization == "bgr_mean" and mean is None:
    mean = splits.mean_image(builder)
  prepare = ModelInputs(mode, normalization, mean=mean)
  return [
    {**batch, "image": np.asarray(prepare(batch))}
    for batch in raw_batches(builder, split, **kwargs)
  ]


def numbers(batch) -> list[int]:
  """The example number of each valid image (rgb normalisation)."""
  values = np.round(batch["image"][:, :, :, 2].mean(axis=(1, 2)) * 255)
  return [int(v) for v, ok in zip(values, batch["valid"]) if ok]


def placements(batch) -> list[tuple[int, int, bool]]:
  """(column, row, mirrored) of each crop's top-left source pixel."""
  pixels = np.round(batch["image"] * 255).astype(int)
  left, right = pixels[:, 0, 0, 0], pixels[:, 0, -1, 0]
  return [
    (min(l, r), int(row), bool(l > r))
    for l, r, row in zip(left, right, pixels[:, 0, 0, 1])
  ]


@pytest.mark.parametrize("mode, size", [("resize", 170), ("crop", 200)])
def test_batches_leave_as_uint8_images_and_windows(builder, mode, size):
  train, test = (
    raw_batches(builder, split, mode=mode)[0] for split in ("train", "test")
  )
  for batch in (train, test):
    assert batch["image"].dtype == np.uint8
    assert batch["image"].shape == (4, size, size, 3)
    assert batch["window"].dtype == np.int32
    assert batch["window"].shape == (4, 3)
    # Crop mode mirrors: the AUs are bilateral, the intensities unchanged.
    assert batch["intensity"].dtype == np.int8
    np.testing.assert_array_equal(batch["intensity"], [INTENSITY] * 4)
  centre = [15, 15, 0] if mode == "crop" else [0, 0, 0]
  np.testing.assert_array_equal(test["window"], [centre] * 4)
  if mode == "crop":  # training draws corners in 0..30 and mirrors
    assert (train["window"][:, :2] >= 0).all()
    assert (train["window"][:, :2] <= 30).all()
  else:
    np.testing.assert_array_equal(train["window"], 0)


@pytest.mark.parametrize("mode", model_inputs.MODES)
@pytest.mark.parametrize("normalization", model_inputs.NORMALIZATIONS)
def test_shapes_dtypes_and_ranges(builder, mode, normalization):
  batch = batches(builder, mode=mode, normalization=normalization)[0]
  assert batch["image"].shape == (4, 170, 170, 3)
  assert batch["image"].dtype == np.float32
  assert batch["labels"].dtype == np.int8 and batch["labels"].shape == (4, 3)
  assert batch["valid"].dtype == bool and batch["valid"].all()
  np.testing.assert_array_equal(batch["labels"], [LABELS] * 4)
  image = batch["image"]
  if normalization == "rgb":
    assert 0 <= image.min() and image.max() <= 1
  else:  # BGR: channel 2 is red, the column, whose mean is the column
    rounding = 0.5 if mode == "resize" else 0  # resized images are uint8
    assert abs(image[..., 2]).max() <= rounding + 1e-4
    assert image[..., 0].min() < 0 < image[..., 0].max()


def test_crop_is_random_in_training_and_central_in_evaluation(builder):
  seen = {}
  for batch in batches(builder, mode="crop"):
    for number, place in zip(numbers(batch), placements(batch)):
      seen.setdefault(number, []).append(place)
  assert sorted(seen) == list(range(NUM_TRAIN))
  assert all(
    0 <= col <= 30 and 0 <= row <= 30
    for places in seen.values()
    for col, row, _ in places
  )
  assert any(first != second for first, second in seen.values())
  mirrored = [m for places in seen.values() for _, _, m in places]
  assert any(mirrored) and not all(mirrored)
  for batch in batches(builder, "test", mode="crop"):
    assert set(placements(batch)[: sum(batch["valid"])]) == {(15, 15, False)}


def test_resize_is_pils_and_the_same_in_training_and_evaluation(builder):
  train = batches(builder, mode="resize", num_epochs=1)
  test = batches(builder, "test", mode="resize")
  number = numbers(test[0])[0]
  pil = np.asarray(
    Image.fromarray(face(number)).resize((170, 170), Image.Resampling.BILINEAR),
    np.float32,
  )
  np.testing.assert_allclose(test[0]["image"][0] * 255, pil, atol=1 + 1e-4)
  reference = test[0]["image"][0, ..., :2]
  for batch in train:
    np.testing.assert_allclose(
      batch["image"][..., :2],
      np.broadcast_to(reference, (4, 170, 170, 2)),
      atol=1e-6,
    )


def test_order_follows_the_seed_and_changes_every_epoch(builder):
  def order(seed):
    return [numbers(b) for b in batches(builder, seed=seed, num_epochs=2)]

  first = order(0)
  assert first == order(0)
  assert first != order(1)
  epoch_length = NUM_TRAIN // 4
  assert first[:epoch_length] != first[epoch_length:]
  assert sorted(sum(first[:epoch_length], [])) == list(range(NUM_TRAIN))


def test_start_step_resumes_with_the_same_batches(builder):
  full = batches(builder, mode="crop", num_epochs=3, seed=5)
  resumed = batches(builder, mode="crop", num_epochs=3, seed=5, start_step=4)
  assert len(resumed) == len(full) - 4
  for a, b in zip(full[4:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])


def test_cache_gives_the_same_batches(builder):
  plain = batches(builder, mode="crop", num_epochs=2)
  cached = batches(builder, mode="crop", num_epochs=2, cache=True)
  for a, b in zip(plain, cached, strict=True):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["intensity"], b["intensity"])


def test_evaluation_sees_every_example_once_with_padding_masked(builder):
  result = batches(builder, "test")
  assert (
    len(result)
    == splits.num_batches(
      builder, "test", batch_size=4, train=False, process_count=1
    )
    == 2
  )
  assert [b["valid"].tolist() for b in result] == [
    [True] * 4,
    [True] + [False] * 3,
  ]
  seen = sum((numbers(b) for b in result), [])
  assert sorted(seen) == list(range(TEST_OFFSET, TEST_OFFSET + NUM_TEST))
  assert (result[-1]["image"][1:] == 0).all()
  np.testing.assert_array_equal(result[-1]["labels"][1:], 0)  # padding
  np.testing.assert_array_equal(
    result[-1]["intensity"], [INTENSITY] + [[UNKNOWN_INTENSITY] * 3] * 3
  )


@pytest.mark.parametrize("split", ["train", "test"])
def test_processes_get_disjoint_parts(builder, split):
  parts = []
  for index in range(2):
    result = batches(
      builder,
      split,
      batch_size=2,
      num_epochs=1,
      process_index=index,
      process_count=2,
    )
    assert len(result) == splits.num_batches(
      builder, split, batch_size=2, train=split == "train", process_count=2
    )
    parts.append(set(sum((numbers(b) for b in result), [])))
  assert not parts[0] & parts[1]
  if split == "test":  # evaluation is complete; training drops remainders
    assert parts[0] | parts[1] == set(
      range(TEST_OFFSET, TEST_OFFSET + NUM_TEST)
    )


def test_mean_image_is_the_train_split_mean_in_bgr(builder):
  mean = splits.mean_image(builder)
  expected = np.mean([face(n) for n in range(NUM_TRAIN)], axis=0)[..., ::-1]
  np.testing.assert_allclose(mean, expected, atol=1e-4)
  assert mean.dtype == np.float32 and mean.shape == (200, 200, 3)
  batch = batches(builder, "test", mode="crop", normalization="bgr_mean")[0]
  number = np.round(batch["image"][0, 0, 0, 0] + expected[0, 0, 0])
  np.testing.assert_allclose(
    batch["image"][0],
    face(number)[15:185, 15:185, ::-1] - expected[15:185, 15:185],
    atol=1e-4,
  )


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"mode": "flip"}, "unknown mode 'flip'; valid: resize, crop"),
    (
      {"normalization": "yuv"},
      "unknown normalization 'yuv'; valid: rgb, bgr_mean",
    ),
    ({"batch_size": 100}, "fewer than batch_size 100 examples per process"),
  ],
)
def test_bad_arguments_raise_one_line(builder, kwargs, message):
  with pytest.raises(ValueError, match=message) as error:
    batches(builder, **kwargs)
  assert "\n" not in str(error.value)


def test_unknown_split_lists_the_splits(builder):
  with pytest.raises(
    ValueError,
    match="unknown coordinate_faces_builder"
    " split 'validation'; valid: train, test",
  ):
    batches(builder, "validation")


def test_label_counts_count_positives_and_labelled_examples(builder):
  positives, labelled = splits.label_counts(builder, "train")
  np.testing.assert_array_equal(positives, [NUM_TRAIN, 0, 0])
  np.testing.assert_array_equal(labelled, [NUM_TRAIN, NUM_TRAIN, 0])


def test_validation_subjects_never_reach_training_batches(builder):
  train, val = splits.validation_split(builder)
  assert (train.subjects, val.subjects) == (("S0",), ("S1",))
  assert splits.num_examples(builder, train) == NUM_TRAIN // 2
  seen = []
  for index in range(2):
    for batch in batches(
      builder,
      train,
      train=True,
      batch_size=1,
      process_index=index,
      process_count=2,
    ):
      seen += numbers(batch)
  # Two epochs of each process's 3 examples, all of subject S0 (even).
  assert sorted(seen) == sorted(2 * list(range(0, NUM_TRAIN, 2)))
  evaluated = []
  for index in range(2):
    for batch in batches(
      builder, val, batch_size=2, process_index=index, process_count=2
    ):
      evaluated += numbers(batch)
  assert sorted(evaluated) == list(range(1, NUM_TRAIN, 2))
  positives, labelled = splits.label_counts(builder, train)
  np.testing.assert_array_equal(labelled, [6, 6, 0])


@pytest.mark.parametrize(
  "names, message",
  [("S7", "'S7' is not a subject"), ("S0,S1", "leaves no training subject")],
)
def test_bad_validation_subjects_fail_in_one_line(builder, names, message):
  with pytest.raises(ValueError, match=message):
    splits.validation_split(builder, names)


@pytest.fixture(scope="module")
def synthetic_builder(tmp_path_factory):
  """The tiny synthetic dataset (2 + 1 subjects x 8 frames), built once."""
  tfds.disable_progress_bar()
  return registry.build(
    "synthetic",
    dataset_config="tiny",
    data_dir=str(tmp_path_factory.mktemp("synthetic_tfds")),
  )


@pytest.mark.parametrize("split", ["train", "test"])
def test_synthetic_batches_carry_the_au_files_intensities(
  synthetic_builder, split
):
  result = raw_batches(
    synthetic_builder, split, batch_size=5, mode="crop", num_epochs=1
  )
  count = synthetic_builder.info.splits[split].num_examples
  assert len(result) == (count // 5 if split == "train" else -(-count // 5))
  for batch in result:
    intensity, labels, valid = (
      batch["intensity"],
      batch["labels"],
      batch["valid"],
    )
    assert intensity.dtype == np.int8 and intensity.shape == (5, 12)
    assert intensity.min() >= UNKNOWN_INTENSITY and intensity.max() <= 5
    # DISFA+'s rule, which the synthetic dataset's labels follow.
    np.testing.assert_array_equal(intensity[valid] >= 2, labels[valid] == 1)
    assert (intensity[valid] >= 0).all()  # every intensity is coded
    assert (intensity[~valid] == UNKNOWN_INTENSITY).all()  # the padding
  seen = np.concatenate([b["intensity"][b["valid"]] for b in result])
  assert (seen > 0).any()
  if split == "test":  # 8 examples in batches of 5: 2 padding rows
    assert (~result[-1]["valid"]).sum() == 2
