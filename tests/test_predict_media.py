"""Decoding what `python -m drml_jax.predict` is given, bad inputs included.

Every fixture is made here from the photographs that ship inside installed
wheels (skimage's astronaut, matplotlib's Grace Hopper), so nothing is fetched.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skimage_data

from data_pipeline.sources.base import DataError
from drml_jax.predict import media

FPS = 10.0
VIDEO_FRAMES = 60
VIDEO_SIDE = 128
# OpenCV's FFmpeg writer puts a keyframe every 12 frames.
KEYFRAME_INTERVAL = 12
# Mean absolute difference, of 255, between a decoded frame and its source:
# mp4v at this size measures ~4.5, concealed or wrong frames 15 and more.
VIDEO_ATOL = 8


def _grace_hopper() -> np.ndarray:
  path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))  # 600x512, a portrait


def _one_line_error(error: pytest.ExceptionInfo, path) -> str:
  text = str(error.value)
  assert text.startswith(f"{path}: ") and "\n" not in text, text
  return text


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_16_bit_images_are_scaled_to_8_bits_not_clipped(tmp_path):
  gray = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY)
  noise = np.random.default_rng(0).integers(-128, 129, gray.shape)
  values = np.clip(gray.astype(int) * 257 + noise, 0, 65535).astype(np.uint16)
  path = tmp_path / "gray16.png"
  cv2.imwrite(str(path), values)
  with Image.open(path) as image:
    assert image.mode == "I;16"
  rgb = media.read_image(str(path))[0]
  expected = np.round(values / 257).astype(np.uint8)
  assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
  assert all((rgb[..., c] == expected).all() for c in range(3))
  assert np.abs(rgb[..., 0].astype(int) - gray).max() <= 1

  colour = skimage_data.astronaut().astype(np.uint16) * 257
  path = tmp_path / "rgb16.png"
  cv2.imwrite(str(path), colour[..., ::-1])  # OpenCV writes BGR
  # PIL keeps the high byte of 16-bit RGB: within 1 of value / 257.
  assert (
    np.abs(
      media.read_image(str(path))[0].astype(int) - skimage_data.astronaut()
    ).max()
    <= 1
  )


def test_a_cmyk_jpeg_decodes_to_its_rgb(tmp_path):
  photo = skimage_data.astronaut()
  path = tmp_path / "cmyk.jpg"
  Image.fromarray(photo).convert("CMYK").save(path, quality=95)
  with Image.open(path) as image:
    assert image.mode == "CMYK"
  rgb = media.read_image(str(path))[0]
  assert rgb.shape == photo.shape
  assert _mean_difference(rgb, photo) < 3  # JPEG's loss: measured 1.1


@pytest.mark.parametrize(
  "orientation, turns",  # EXIF's tag, and np.rot90's turns it undoes
  [(3, 2), (6, 1), (8, -1)],
)
def test_an_exif_rotated_jpeg_comes_upright(tmp_path, orientation, turns):
  portrait = _grace_hopper()
  path = tmp_path / "rotated.jpg"
  exif = Image.Exif()
  exif[0x0112] = orientation  # Orientation
  Image.fromarray(np.ascontiguousarray(np.rot90(portrait, turns))).save(
    path, exif=exif, quality=95
  )
  rgb = media.read_image(str(path))[0]
  assert rgb.shape == portrait.shape
  assert _mean_difference(rgb, portrait) < 3  # measured 0.6; 85 if not turned


def test_a_10000_pixel_wide_jpeg_is_decoded_small(tmp_path):
  wide = cv2.resize(_grace_hopper(), (10_000, 1200))
  path = tmp_path / "wide.jpg"
  Image.fromarray(wide).save(path, quality=90)
  rgb = media.read_image(str(path))[0]
  assert rgb.shape == (492, media.MAX_SIDE, 3)
  expected = cv2.resize(
    wide, (media.MAX_SIDE, 492), interpolation=cv2.INTER_AREA
  )
  assert _mean_difference(rgb, expected) < 5  # drafted at 1/2: measured 2.3


def test_large_images_are_downscaled_and_bombs_refused(
  tmp_path, monkeypatch, recwarn
):
  photo = skimage_data.astronaut()
  path = tmp_path / "astronaut.png"
  Image.fromarray(photo).save(path)
  monkeypatch.setattr(media, "MAX_SIDE", 256)
  np.testing.assert_array_equal(
    media.read_image(str(path))[0],
    cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA),
  )

  # PIL warns above MAX_IMAGE_PIXELS and refuses above twice it.
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)
  assert media.read_image(str(path))[0].shape == (256, 256, 3)
  assert not recwarn.list
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
  with pytest.raises(DataError) as error:
    media.read_image(str(path))[0]
  assert "image too large to decode" in _one_line_error(error, path)


@pytest.mark.parametrize("mode", ["L", "P", "LA", "RGBA", "1"])
def test_gray_palette_and_alpha_images_come_as_rgb(tmp_path, mode):
  photo = Image.fromarray(skimage_data.astronaut())
  if mode in ("LA", "RGBA"):
    image = photo.convert(mode[:-1])
    alpha = np.random.default_rng(0).integers(0, 256, (512, 512), np.uint8)
    image.putalpha(Image.fromarray(alpha))
  elif mode == "P":
    image = photo.quantize(256)
  else:
    image = photo.convert(mode)
  path = tmp_path / f"{mode}.png"
  image.save(path)
  with Image.open(path) as saved:
    assert saved.mode == mode
  rgb = media.read_image(str(path))[0]
  assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
  # PNG is lossless: the colours are exactly the image's, alpha dropped.
  np.testing.assert_array_equal(rgb, np.asarray(image.convert("RGB")))
  if mode != "1":  # and close to the photo (the palette's 256 colours: ~3)
    base = photo.convert("L" if mode.startswith("L") else "RGB")
    assert _mean_difference(rgb, np.asarray(base.convert("RGB"))) < 5


def _write_video(path) -> list[np.ndarray]:
  """An mp4v clip of the astronaut sliding right; its frames, RGB."""
  photo = cv2.resize(skimage_data.astronaut(), (VIDEO_SIDE, VIDEO_SIDE))
  sources = [np.roll(photo, 3 * i, axis=1) for i in range(VIDEO_FRAMES)]
  writer = cv2.VideoWriter(
    str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (VIDEO_SIDE,) * 2
  )
  for source in sources:
    writer.write(cv2.cvtColor(source, cv2.COLOR_RGB2BGR))
  writer.release()
  return sources


def _damage(path) -> None:
  """5000 random bytes over the middle of the file."""
  damaged = bytearray(path.read_bytes())
  start = len(damaged) // 2
  damaged[start : start + 5000] = np.random.default_rng(0).bytes(5000)
  path.write_bytes(bytes(damaged))


def _read(path, every=1) -> tuple[list[media.Frame], DataError | None]:
  read = []
  try:
    read.extend(media.frames(str(path), every))  # keeps those before an error
  except DataError as error:
    return read, error
  return read, None


def test_a_video_damaged_in_the_middle_yields_the_rest_and_names_the_loss(
  tmp_path,
):
  """5000 random bytes over the middle of the clip's frame data (the mp4's
  index, at its end, stays whole): FFmpeg fails to decode a run of frames
  there, and the frames after them still decode at their true times. An MJPG
  AVI damaged alike drops a frame without failing and numbers the rest early,
  so only an mp4 shows where the loss is (see media)."""
  path = tmp_path / "clip.mp4"
  sources = _write_video(path)
  _damage(path)

  read, error = _read(path)
  indices = [frame.index for frame in read]
  lost = sorted(set(range(VIDEO_FRAMES)) - set(indices))
  assert lost and indices == sorted(indices)
  first, last = lost[0], lost[-1]
  assert lost == list(range(first, last + 1)) and 0 < first < last < 59
  assert error is not None and str(error) == (
    f"{path}: frames {first}-{last} of {VIDEO_FRAMES} could not be decoded"
    " (the file is damaged there); the rows of the other frames are written"
  )
  for frame in read:
    assert frame.timestamp_s == pytest.approx(frame.index / FPS)
  # Frames before the damage, and from the next keyframe on, are the source's.
  keyframe = (last // KEYFRAME_INTERVAL + 1) * KEYFRAME_INTERVAL
  clean = [f for f in read if f.index < first - 1 or f.index >= keyframe]
  assert len(clean) >= 30
  for frame in clean:
    assert _mean_difference(frame.image, sources[frame.index]) < VIDEO_ATOL

  read, every_error = _read(path, every=4)
  assert [frame.index for frame in read] == [
    i for i in range(0, VIDEO_FRAMES, 4) if i not in lost
  ]
  assert str(every_error) == str(error)


def test_a_video_losing_too_many_frames_in_a_row_stops(tmp_path, monkeypatch):
  path = tmp_path / "clip.mp4"
  _write_video(path)
  _damage(path)
  monkeypatch.setattr(media, "MAX_LOST_RUN", 2)
  read, error = _read(path)
  first = read[-1].index + 1
  assert first < VIDEO_FRAMES - 1
  assert f": frames {first}-{VIDEO_FRAMES - 1} of {VIDEO_FRAMES} " in str(error)


def test_a_clean_video_yields_every_frame(tmp_path):
  path = tmp_path / "clip.mp4"
  sources = _write_video(path)
  read, error = _read(path, every=7)
  assert error is None
  assert [frame.index for frame in read] == list(range(0, VIDEO_FRAMES, 7))
  for frame in read:
    assert _mean_difference(frame.image, sources[frame.index]) < VIDEO_ATOL
  assert media.frame_count(str(path), every=7) == len(read)


@pytest.mark.parametrize("name", ["empty.mp4", "empty.jpg"])
def test_an_empty_file_is_one_line(tmp_path, name):
  path = tmp_path / name
  path.write_bytes(b"")
  with pytest.raises(DataError) as error:
    list(media.frames(str(path)))
  assert _one_line_error(error, path) == (
    f"{path}: empty file (0 bytes); replace it with a complete copy"
  )


def test_a_file_that_is_not_its_extensions_image_is_one_line(tmp_path):
  text = tmp_path / "notes.png"
  text.write_text("not a png\nat all\n")
  with pytest.raises(DataError) as error:
    list(media.frames(str(text)))
  assert "not an image PIL can read" in _one_line_error(error, text)

  truncated = tmp_path / "truncated.jpg"
  Image.fromarray(_grace_hopper()).save(truncated, quality=90)
  truncated.write_bytes(truncated.read_bytes()[:5000])
  with pytest.raises(DataError) as error:
    list(media.frames(str(truncated)))
  assert "cannot decode the image (image file is truncated" in (
    _one_line_error(error, truncated)
  )


def test_a_folder_of_10000_other_files_is_one_error(tmp_path):
  notes = tmp_path / "notes"
  notes.mkdir()
  for i in range(10_000):
    (notes / f"{i:05d}.{'json' if i % 4 else 'txt'}").touch()
  mixed = tmp_path / "mixed"
  (mixed / "b").mkdir(parents=True)
  (mixed / "a.txt").touch()
  (mixed / "b" / "face.JPG").touch()
  (mixed / "clip.mp4").touch()
  empty = tmp_path / "empty"
  empty.mkdir()

  paths, errors = media.expand([str(notes), str(mixed), str(empty)])
  assert paths == [str(mixed / "clip.mp4"), str(mixed / "b" / "face.JPG")]
  assert [str(error) for error in errors] == [
    (
      f"{notes}: no image or video among its 10000 files (7500 .json,"
      f" 2500 .txt); pass a folder with some ({media.EXTENSIONS})"
    ),
    (
      f"{empty}: empty folder; pass a folder with images or videos"
      f" ({media.EXTENSIONS})"
    ),
  ]
