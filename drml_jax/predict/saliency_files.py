"""Each face's evidence, written beside the CSV as the frames come.

  files = SaliencyFiles("preds_saliency", arrays=True)
  files.write(frame, predictor)   # every face of a FrameAUs

A face's sheet (`saliency.sheet`: one panel per AU over its crop) goes to
FOLDER/<input name>_f<frame>_face<id>.png, and with `arrays` its (C, S, S)
float32 maps to the same name .npy, AUs in the predictor's order.
"""

from __future__ import annotations

import os

import numpy as np

from drml_jax.predict import saliency
from drml_jax.predict.predictor import Predictor
from drml_jax.predict.stream import FaceAUs, FrameAUs


def folder_beside(out: str) -> str:
  """The folder of a run's evidence: the CSV's name less .csv, + _saliency."""
  return f"{os.path.splitext(out)[0]}_saliency"


def face_sheet(item: FaceAUs, predictor: Predictor) -> np.ndarray:
  """A predicted face's evidence sheet: (H, W, 3) uint8 RGB."""
  return saliency.sheet(
    item.crop,
    item.saliency,
    predictor.aus,
    item.probabilities,
    predictor.thresholds,
    predictor.mode,
  )


class SaliencyFiles:
  """Writes every face's sheet, and its maps on request, to one folder."""

  def __init__(self, folder: str, *, arrays: bool = False):
    self.folder = folder
    self.arrays = arrays
    self.stems: dict[str, str] = {}  # input path -> its unique name
    self.written = 0

  def _stem(self, path: str) -> str:
    if path not in self.stems:
      stem = name = os.path.splitext(os.path.basename(path))[0]
      copy = 1
      while stem in self.stems.values():
        copy += 1
        stem = f"{name}_{copy}"
      self.stems[path] = stem
    return self.stems[path]

  def write(self, frame: FrameAUs, predictor: Predictor) -> None:
    """Writes the sheet (and maps) of each of `frame`'s faces."""
    # Imported here: Pillow's encoder, for --saliency only.
    from PIL import Image  # pylint: disable=import-outside-toplevel

    os.makedirs(self.folder, exist_ok=True)
    for item in frame.faces:
      name = os.path.join(
        self.folder,
        f"{self._stem(frame.file)}_f{frame.index:06d}_face{item.face_id}",
      )
      Image.fromarray(face_sheet(item, predictor)).save(f"{name}.png")
      if self.arrays:
        np.save(f"{name}.npy", item.saliency.astype(np.float32))
      self.written += 1
