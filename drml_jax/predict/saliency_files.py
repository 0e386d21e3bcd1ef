"""Each face's evidence, written beside the CSV as the frames come.

  files = SaliencyFiles("preds_saliency", arrays=True)
  files.write(frame, predictor)   # every face of a FrameAUs
  files.sheet_of(item)            # a face of that frame's sheet, PNG bytes

A face's sheet (`saliency.sheet`: one panel per AU over its crop) goes to
FOLDER/<input name>_f<frame>_face<id>.png, and with `arrays` its (C, S, S)
float32 maps to the same name .npy, AUs in the predictor's order. The last
frame's sheets are kept, encoded, for the report page (`sheet_of`): each is
drawn and encoded once.
"""

from __future__ import annotations

import io
import os

import numpy as np

from drml_jax.predict import saliency
from drml_jax.predict.gathered import unique_name
from drml_jax.predict.predictor import Predictor
from drml_jax.predict.stream import FaceAUs, FrameAUs


def folder_beside(out: str) -> str:
  """The folder of a run's evidence: the CSV's name less .csv, + _saliency."""
  return f"{os.path.splitext(out)[0]}_saliency"


class SaliencyFiles:
  """Writes every face's sheet, and its maps on request, to one folder."""

  def __init__(self, folder: str, *, arrays: bool = False):
    self.folder = folder
    self.arrays = arrays
    self.stems: dict[str, str] = {}  # input path -> its unique name
    self.taken: set[str] = set()
    self.sheets: dict[int, bytes] = {}  # the last frame's, by face_id
    self.written = 0

  def _stem(self, path: str) -> str:
    if path not in self.stems:
      name = os.path.splitext(os.path.basename(path))[0]
      self.stems[path] = unique_name(name, self.taken)
    return self.stems[path]

  def write(self, frame: FrameAUs, predictor: Predictor) -> None:
    """Writes the sheet (and maps) of each of `frame`'s faces."""
    # Imported here: Pillow's encoder, for --saliency only.
    from PIL import Image  # pylint: disable=import-outside-toplevel

    os.makedirs(self.folder, exist_ok=True)
    self.sheets = {}
    for item in frame.faces:
      name = os.path.join(
        self.folder,
        f"{self._stem(frame.file)}_f{frame.index:06d}_face{item.face_id}",
      )
      sheet = saliency.sheet(
        item.crop,
        item.saliency,
        predictor.aus,
        item.probabilities,
        predictor.thresholds,
        predictor.mode,
      )
      png = io.BytesIO()
      Image.fromarray(sheet).save(png, format="PNG")
      self.sheets[item.face_id] = png.getvalue()
      with open(f"{name}.png", "wb") as f:
        f.write(self.sheets[item.face_id])
      if self.arrays:
        np.save(f"{name}.npy", item.saliency.astype(np.float32))
      self.written += 1

  def sheet_of(self, item: FaceAUs) -> bytes | None:
    """The PNG of a face of the frame last written."""
    return self.sheets.get(item.face_id)
