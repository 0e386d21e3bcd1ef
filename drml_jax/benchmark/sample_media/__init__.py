"""Photographs and clips with known faces, built offline from installed wheels.

Every image comes from a file that scikit-image or matplotlib ship in their
wheels, so nothing is downloaded:

* faces: `skimage.data.astronaut()` (Eileen Collins, frontal),
  matplotlib's sample `grace_hopper.jpg` (frontal), `skimage.data.camera()`
  (the cameraman, grayscale, his face in three-quarter profile) and the
  first 100 of `skimage.data.lfw_subset()`'s 200 grayscale 25x25 crops
  (Labeled Faces in the Wild, tight around the face);
* no face: skimage's coffee, rocket, hubble_deep_field, brick, grass,
  gravel, horse (a silhouette), text, page and coins, the last 100 LFW crops
  (patches without a face), matplotlib's `topobathy.npz` elevation map
  shaded as a landscape, and a chart and shapes drawn with matplotlib; and
  skimage's chelsea, a cat: a hard negative, kept apart (kind "cat").

A face is a `Box`: the centre and side of its square, brows to mouth as a
frontal Haar cascade frames it, in continuous pixel coordinates (pixel i
spans [i, i + 1]). The transforms (`roll`, `mirror`, `scale`, `yaw`,
`paste`) move the boxes with the pixels. `labelled_set` builds about 110
labelled images from them, `score` measures a face detector on them, and
`write_clip` writes mp4 clips of moving faces with per-frame ground truth;
`write_y4m` turns one into a fake camera's file for Chromium, and
`serve_mjpeg` serves one's frames (`jpeg_frames`) as a live HTTP stream.
The package's modules: `photos` (the photos, `Box`, the transforms),
`face_set` (the labelled set, `match`, `score`), `clips`, `streams`, `placed`
(synthetic faces placed by a known similarity, `alignment_error`).
`write_synthetic_video` writes a clip of the synthetic dataset's kind of
face, whose AUs a model trained on it reads.
"""

from drml_jax.benchmark.sample_media.clips import (
  CLIP_KINDS,
  OUT_SECONDS,
  write_clip,
  write_synthetic_video,
  write_y4m,
)
from drml_jax.benchmark.sample_media.face_set import (
  LARGEST_SIDE,
  LFW_ITEMS,
  ROLLS,
  Item,
  labelled_set,
  landscape,
  match,
  negatives,
  score,
)
from drml_jax.benchmark.sample_media.photos import (
  YAW_DISTANCE,
  Box,
  Cutout,
  cutout,
  face_photos,
  lfw_crops,
  mirror,
  paste,
  roll,
  scale,
  with_alpha,
  yaw,
)
from drml_jax.benchmark.sample_media.placed import (
  Placed,
  alignment_error,
  placed_faces,
)
from drml_jax.benchmark.sample_media.streams import jpeg_frames, serve_mjpeg

__all__ = [
  "CLIP_KINDS",
  "LFW_ITEMS",
  "LARGEST_SIDE",
  "ROLLS",
  "OUT_SECONDS",
  "YAW_DISTANCE",
  "Box",
  "Cutout",
  "Item",
  "Placed",
  "alignment_error",
  "cutout",
  "face_photos",
  "jpeg_frames",
  "labelled_set",
  "landscape",
  "lfw_crops",
  "match",
  "mirror",
  "negatives",
  "paste",
  "placed_faces",
  "roll",
  "scale",
  "score",
  "serve_mjpeg",
  "with_alpha",
  "write_clip",
  "write_synthetic_video",
  "write_y4m",
  "yaw",
]
