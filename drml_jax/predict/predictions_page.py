"""Predict's --report: one self-contained HTML page of a run's predictions.

  report.write("report.html", gathered, predictor, every=1, detect=True)

The page (drml_jax/rendering/templates/predictions.html) holds the run's
summary (the model and its preprocessing, the inputs, their frames and
faces, the inputs that failed, how often each AU was active and, for a
model with the intensity head, its mean intensity), each video's AU
timelines with their thresholds (`plots.au_timeline_png`, inline; beside
each AU its intensity, with the head), and a card per kept face of the
photos: its crop, active AUs, every AU's probability against its threshold
(and intensity, with the head), and its evidence image when one was drawn
(`gathered.KeptFace.evidence`).
"""

from __future__ import annotations

import datetime
import os

from drml_jax.predict.gathered import Gathered, KeptFace, active_aus, timelines
from drml_jax.predict.predictor import BatchedPredictor, au_name
from drml_jax.rendering import html, plots


def _face_card(face: KeptFace, aus, thresholds) -> dict:
  """What a face's card shows."""
  active = active_aus(aus, face.occurrences)
  return {
    "name": os.path.basename(face.file),
    "path": face.file,
    "face_id": face.face_id,
    "uri": html.png_uri(face.crop),
    "active": [au_name(au) for au in active],
    "aus_attr": " ".join(map(str, active)),
    "probabilities": [
      {
        "au": au_name(au),
        "value": f"{p:.3f}",
        "percent": f"{100 * p:.1f}",
        "threshold_percent": f"{100 * t:.1f}",
        "on": bool(on),
        "intensity": None if r is None else f"{r:.2f}",
      }
      for au, p, t, on, r in zip(
        aus,
        face.probabilities,
        thresholds,
        face.occurrences,
        [None] * len(aus) if face.intensities is None else face.intensities,
      )
    ],
    "evidence_uri": None
    if face.evidence is None
    else html.png_uri(face.evidence),
  }


def _timelines(gathered: Gathered, predictor: BatchedPredictor) -> list[dict]:
  """Each video's AU timeline figure, inline."""
  shown = []
  for path, times, values, intensities in timelines(gathered, predictor):
    counts = gathered.files[path]
    name = os.path.basename(path)
    shown.append(
      {
        "name": name,
        "path": path,
        "note": f"{counts.frames} frames predicted, {counts.faces} faces, "
        f"{values.shape[1]} face id(s), {counts.without_face} frames "
        "without a face",
        "uri": html.png_uri(
          plots.au_timeline_png(
            times,
            values,
            predictor.aus,
            predictor.thresholds,
            name,
            intensities,
          )
        ),
      }
    )
  return shown


def _faces_note(gathered: Gathered) -> str:
  photo_faces = len(gathered.faces) + gathered.faces_left_out
  if not photo_faces:
    return "No face in the photos" + (
      "; the videos' faces are in their timelines above."
      if gathered.videos
      else "."
    )
  note = f"{len(gathered.faces)} face(s) of the photos, with their active AUs"
  if gathered.faces_left_out:
    note += (
      f"; {gathered.faces_left_out} more left out (the first "
      f"{len(gathered.faces)} are shown)"
    )
  return note + "."


def page(
  gathered: Gathered, predictor: BatchedPredictor, *, every: int, detect: bool
) -> str:
  """The HTML page of a predict run: `every` video frame was read, faces
  were detected (`detect`) or each input taken as an aligned crop."""
  aus, thresholds = predictor.aus, predictor.thresholds
  faces = gathered.face_count
  active = gathered.active if gathered.active is not None else [0] * len(aus)
  shown = _timelines(gathered, predictor)
  intensity = predictor.has_intensity
  means = gathered.mean_intensities
  if means is None:
    means = [None] * len(aus)
  cards = [_face_card(face, aus, thresholds) for face in gathered.faces]
  sections = [("summary", "Summary")]
  sections += [("timelines", "AUs over time")] if shown else []
  sections += [("faces", "Faces")]
  return html.render(
    "predictions.html",
    title="Action units predicted",
    subtitle=f"{len(gathered.files)} file(s), {gathered.frames} frame(s), "
    f"{faces} face(s); {predictor.description}",
    sections=sections,
    footer="Made by python -m drml_jax.predict --report on "
    + datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    stats=[
      (len(gathered.files), "files"),
      (gathered.frames, "frames"),
      (faces, "faces"),
      (gathered.without_face, "frames without a face"),
      (len(gathered.errors), "inputs failed"),
    ],
    errors=gathered.errors,
    model=[
      ("model", predictor.description),
      ("AUs", " ".join(map(au_name, aus))),
      (
        "preprocessing",
        f"{predictor.mode}, {predictor.normalization}, "
        f"{predictor.input_size}x{predictor.input_size} input",
      ),
      (
        "faces",
        "detected at any angle, aligned by their landmarks and cropped"
        if detect
        else "each input taken as an aligned face crop",
      ),
      ("video frames", "every frame" if every == 1 else f"every {every}th"),
      (
        "outputs",
        "probabilities, occurrences and intensities (0-5, the intensity head)"
        if intensity
        else "probabilities and occurrences (no intensity head)",
      ),
    ],
    files=[
      [
        c.path,
        "video" if c.video else "photo",
        c.frames,
        c.faces,
        c.without_face,
      ]
      for c in gathered.files.values()
    ],
    face_count=faces,
    au_rows=[
      {
        "au": au_name(au),
        "threshold": f"{t:.3f}",
        "active": int(n),
        "percent": f"{100 * n / faces:.1f}" if faces else "0.0",
        "intensity": "-" if r is None else f"{r:.2f}",
      }
      for au, t, n, r in zip(aus, thresholds, active, means)
    ],
    intensity=intensity,
    timelines=shown,
    faces=cards,
    faces_note=_faces_note(gathered),
    filter_aus=[(str(au), au_name(au)) for au in aus],
  )


def write(
  path: str,
  gathered: Gathered,
  predictor: BatchedPredictor,
  *,
  every: int,
  detect: bool,
) -> None:
  """Writes `page` to `path`, atomically."""
  html.write(path, page(gathered, predictor, every=every, detect=detect))
