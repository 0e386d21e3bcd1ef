"""A TFDS builder over a `Source`: one record per `Example`."""

from __future__ import annotations

import abc
import collections
import io
from typing import Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_pipeline.sources.base import (
  IMAGE_SIZE,
  UNKNOWN_INTENSITY,
  Example,
  Source,
  check_face,
)
from data_pipeline.tf_cpu import tfds

# zlib level 1: faster to write than TF's default (level 6), files a little
# larger, as fast to decode (benchmarks/README.md#cpu-figures).
PNG_COMPRESSION = 1


def features(num_aus: int) -> tfds.features.FeaturesDict:
  """The record of every dataset here: a face, its AU labels and
  intensities, and where it is from."""
  return tfds.features.FeaturesDict(
    {
      "image": tfds.features.Image(
        shape=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8, encoding_format="png"
      ),
      "labels": tfds.features.Tensor(shape=(num_aus,), dtype=np.int8),
      "intensity": tfds.features.Tensor(shape=(num_aus,), dtype=np.int8),
      "subject": tfds.features.Text(),
      "frame_id": tfds.features.Text(),
    }
  )


class SourceBuilder(tfds.core.GeneratorBasedBuilder):
  """Builds every split of the `Source` that `_source` opens.

  Labels are int8 in {-1, 0, +1} (0: ignore), in the order of
  `info.metadata["aus"]`; "intensity" is int8 in 0..5 in the same order,
  UNKNOWN_INTENSITY (-1) where the source has none. Building prints each
  split's per-subject counts.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
    "1.1.0": (
      "Records gain intensity: int8 (C,) FACS intensities 0..5 in the"
      " labels' AU order, -1 where unknown. Copies built at 1.0.0 are"
      " built again rather than read without it."
    ),
    "1.0.0": "Initial release: image, labels, subject, frame_id.",
  }

  @property
  @abc.abstractmethod
  def aus(self) -> tuple[int, ...]:
    """The AU numbers, in label order."""

  @abc.abstractmethod
  def _source(self, dl_manager: tfds.download.DownloadManager) -> Source:
    """Opens the source that the dataset is built from."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=features(len(self.aus)),
      metadata=tfds.core.MetadataDict(aus=list(self.aus)),
    )

  def _split_generators(self, dl_manager):
    source = self._source(dl_manager)
    if tuple(source.aus) != tuple(self.aus):
      raise ValueError(
        f"{self.name}: the source labels AUs {source.aus},"
        f" the dataset declares {self.aus}"
      )
    return {
      split: self._generate_examples(source, split) for split in source.splits
    }

  def _generate_examples(self, source: Source, split: str) -> Iterator:
    counts = collections.Counter()
    positives = np.zeros(len(self.aus), np.int64)
    for example in source.examples(split):
      counts[example.subject] += 1
      positives += example.labels > 0
      yield (
        example.frame_id,
        {
          "image": png(check_face(example.image, example.frame_id)),
          "labels": example.labels,
          "intensity": intensity(example, len(self.aus)),
          "subject": example.subject,
          "frame_id": example.frame_id,
        },
      )
    tqdm.write(summary(f"{self.name} {split}", counts, positives, self.aus))


def intensity(example: Example, num_aus: int) -> np.ndarray:
  """The example's (C,) int8 intensities; all UNKNOWN_INTENSITY for None."""
  if example.intensity is None:
    return np.full(num_aus, UNKNOWN_INTENSITY, np.int8)
  values = np.asarray(example.intensity)
  if values.shape != (num_aus,) or values.dtype != np.int8:
    raise ValueError(
      f"{example.frame_id}: intensity is {values.dtype} {values.shape},"
      f" expected int8 ({num_aus},)"
    )
  return values


def summary(
  title: str,
  counts: dict[str, int],
  positives: np.ndarray,
  aus: tuple[int, ...],
) -> str:
  """Two lines: examples per subject, and each AU's positive rate."""
  total = sum(counts.values())
  rates = positives / max(total, 1)
  return (
    f"{title}: {total:,} examples from {len(counts)} subjects: "
    + ", ".join(f"{s} {n:,}" for s, n in sorted(counts.items()))
    + "\n  positive %: "
    + " ".join(f"AU{au} {100 * r:.1f}" for au, r in zip(aus, rates))
  )


def png(image: np.ndarray) -> bytes:
  """`image` encoded as PNG, which the Image feature stores as it is."""
  encoded = io.BytesIO()
  Image.fromarray(image).save(
    encoded, format="PNG", compress_level=PNG_COMPRESSION
  )
  return encoded.getvalue()
