"""The HTML report pages, opened in headless Chromium.

Predict's --report page (the session's reference run's model on two photos
and a short video) and that run's report.html are loaded from their files
with every network request blocked and recorded; each must raise no console
or page error, ask for nothing but its own file, decode every image and
show its parts. Full-page and element screenshots must not be blank; they
are saved under the test's tmp_path, and one of each page is copied to the
folder named by DRML_REPORT_SHOTS when it is set.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright
without its own browser download; the browser tests skip when either is
missing. The tests that read the reference run are marked slow: they wait
for its training.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import pathlib
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from data_pipeline.sources.base import DISFA_PLUS_AUS
from drml_jax import report as report_command
from drml_jax.benchmark import sample_media
from drml_jax.predict import __main__ as predict
from drml_jax.predict import gathered, predictions_page
from drml_jax.predict.stream import FaceAUs, FrameAUs
from drml_jax.rendering import run_page
from drml_jax.store import workdir
from tests import browser_support

ROOT = pathlib.Path(__file__).resolve().parents[1]
ODD_NAME = 'a<b>&"x".png'  # a file name to escape
VIDEO_FRAMES = 6


@pytest.fixture(scope="module")
def browser():
  """Headless Chromium (the system's), driven by Playwright."""
  with browser_support.chromium() as launched:
    yield launched


def _not_blank(png: bytes | pathlib.Path) -> None:
  image = Image.open(png if isinstance(png, pathlib.Path) else io.BytesIO(png))
  pixels = np.asarray(image.convert("L"), np.float32)
  assert pixels.size > 0 and pixels.std() > 5, "a blank screenshot"


def _open(browser, path: pathlib.Path, parts: list[str], shot: pathlib.Path):
  """Loads `path` with the network blocked; checks errors, requests, images
  and that each selector of `parts` is visible and not blank; saves a
  full-page screenshot to `shot`. Returns the page (its context open)."""
  context = browser.new_context(viewport={"width": 1280, "height": 900})
  page = context.new_page()
  url = path.resolve().as_uri()
  requests, problems = [], []
  page.on("request", lambda request: requests.append(request.url))
  page.on(
    "console",
    lambda message: (
      problems.append(message.text) if message.type == "error" else None
    ),
  )
  page.on("pageerror", lambda error: problems.append(str(error)))
  page.route(
    "**/*",
    lambda route: (
      route.continue_() if route.request.url == url else route.abort()
    ),
  )
  page.goto(url, wait_until="load")
  assert requests == [url], f"requests beyond the file: {requests}"
  assert not problems, problems
  images = page.eval_on_selector_all(
    "img", "all => all.map(i => [i.alt, i.complete, i.naturalWidth])"
  )
  assert all(done and width > 0 for _, done, width in images), images
  for selector in parts:
    element = page.locator(selector).first
    assert element.is_visible(), selector
    _not_blank(element.screenshot())
  page.screenshot(path=str(shot), full_page=True)
  _not_blank(shot)
  return page


@pytest.fixture(scope="module")
def predict_run(tmp_path_factory, reference_run):
  """A predict run with --report: two photos (one oddly named) and a short
  video, each taken as an aligned face crop, by the reference run's model
  (the tiny DRML: a model built here would take seconds to initialise)."""
  base = tmp_path_factory.mktemp("report_predict")
  inputs = base / "inputs"
  inputs.mkdir()
  photos = sample_media.face_photos()
  for name, key in ((ODD_NAME, "astronaut"), ("hopper.png", "grace_hopper")):
    Image.fromarray(photos[key][0]).save(inputs / name)
  sample_media.write_synthetic_video(
    str(inputs / "clip.mp4"),
    frames=VIDEO_FRAMES,
    size=(200, 200),
    face_side=200,
    fps=10.0,
  )
  argv = [str(inputs), "--workdir", str(reference_run)]
  argv += ["--faces", "aligned", "--batch-size", "4", "--no-progress"]
  argv += ["--out", str(base / "p.csv"), "--report", str(base / "p.html")]
  assert predict.main(argv) == 0
  return SimpleNamespace(base=base, argv=argv, page=base / "p.html")


@pytest.mark.slow
def test_the_predict_page_in_a_browser(predict_run, browser, tmp_path):
  text = predict_run.page.read_text()
  assert "&lt;b&gt;&amp;&#34;x&#34;.png" in text and "<b>&" not in text
  page = _open(
    browser,
    predict_run.page,
    ["#summary", "#timelines img.timeline", ".card"],
    tmp_path / "predictions.png",
  )
  browser_support.keep_shot("predictions", tmp_path / "predictions.png")
  assert page.locator("#summary .stat").first.inner_text().startswith("3")
  assert page.locator("#timelines img.timeline").count() == 1
  cards = page.locator(".card")
  assert cards.count() == 2
  names = cards.locator("h3").all_inner_texts()
  assert any(ODD_NAME in name for name in names), names
  assert page.locator(".card h3 b").count() == 0, "the name was escaped"
  assert cards.first.locator("table.p tr").count() == len(DISFA_PLUS_AUS)

  # The filter shows the faces with an AU: the CSV's photo rows say which.
  with open(predict_run.base / "p.csv", newline="") as f:
    photos = [r for r in csv.DictReader(f) if r["file"].endswith(".png")]
  counts = {
    au: sum(row[f"AU{au:02d}_c"] == "1" for row in photos)
    for au in DISFA_PLUS_AUS
  }
  au = min(counts, key=lambda a: (counts[a] != 1, a))  # one face, if any
  page.select_option("#au-filter", str(au))
  assert page.locator(".card:visible").count() == counts[au]
  page.context.close()

  # Without script every face shows and the filter stays hidden.
  context = browser.new_context(java_script_enabled=False)
  static = context.new_page()
  static.goto(predict_run.page.resolve().as_uri())
  assert static.locator(".card:visible").count() == 2
  assert not static.locator("#filter").is_visible()
  context.close()


@pytest.mark.slow
def test_predict_refuses_an_existing_page(predict_run, capsys):
  before = predict_run.page.read_bytes()
  argv = list(predict_run.argv)
  argv[argv.index("--out") + 1] = str(predict_run.base / "other.csv")
  assert predict.main(argv) == 2
  err = capsys.readouterr().err
  assert err == (
    f"error: {predict_run.page} already exists: pass --overwrite to replace "
    "it, or another --out\n"
  )
  assert predict_run.page.read_bytes() == before
  assert not (predict_run.base / "other.csv").exists()


def _frame(name: str, probabilities) -> FrameAUs:
  crop = np.full((200, 200, 3), 40 * len(name) % 255, np.uint8)
  face = FaceAUs(0, None, crop, np.asarray(probabilities, np.float32))
  face.occurrences = face.probabilities >= 0.5
  face.intensities = 5 * face.probabilities  # a model with the head
  return FrameAUs(name, 0, None, [face])


def test_faces_left_out_and_evidence_images(browser, tmp_path):
  """A page without a model: three photo faces, two kept, each with an
  evidence image (what saliency draws) and intensities (the intensity
  head's), and an input that failed."""
  kept = gathered.Gathered(
    keep_faces=2,
    evidence=lambda item: np.tile(
      np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], (100, 1, 3)
    ),
  )
  for name, p in (("one.png", 0.9), ("two.png", 0.2), ("three.png", 0.7)):
    kept.add(_frame(name, [p, 1 - p]))
  kept.error(ValueError("gone.png: no such file"))
  predictor = SimpleNamespace(
    aus=(1, 2),
    thresholds=np.array([0.5, 0.5]),
    description="a test model",
    mode="resize",
    normalization="rgb",
    input_size=66,
    has_intensity=True,
  )
  path = tmp_path / "faces.html"
  predictions_page.write(str(path), kept, predictor, every=1, detect=True)
  page = _open(
    browser, path, ["#summary", ".card img.evidence"], tmp_path / "faces.png"
  )
  assert page.locator(".card").count() == 2
  assert page.locator(".card img.evidence").count() == 2
  assert "1 more left out" in page.locator("#faces").inner_text()
  assert "gone.png: no such file" in page.locator("ul.errors").inner_text()
  assert page.locator("#timelines").count() == 0
  # Each AU's mean intensity over the three faces, and each card's values.
  assert "mean intensity" in page.locator("table.aus thead").inner_text()
  assert page.locator("table.aus td.intensity").all_inner_texts() == [
    "3.00",  # 5 x (0.9 + 0.2 + 0.7) / 3
    "2.00",
  ]
  assert page.locator(".card").first.locator(
    "td.intensity"
  ).all_inner_texts() == ["4.50", "0.50"]
  page.context.close()


@pytest.mark.slow
def test_the_run_page_in_a_browser(reference_run, browser, tmp_path, capsys):
  assert (reference_run / workdir.REPORT_FILE).stat().st_size > 0, (
    "training writes report.html"
  )
  out = tmp_path / "run.html"
  assert report_command.main([str(reference_run), "--out", str(out)]) == 0
  assert capsys.readouterr().out == f"wrote {out}\n"
  page = _open(
    browser,
    out,
    ["#results table.scores", "#curves img.curve", "#tables"],
    tmp_path / "run.png",
  )
  browser_support.keep_shot("run", tmp_path / "run.png")
  assert page.locator("#curves img.curve").count() == 2
  results = page.locator("#results").inner_text()
  assert "finished" in results and "--selection test" in results
  assert "constant: all AUs present" in results
  assert "0.5 for every AU" in results
  header = page.locator("#results table.scores").first.locator("th")
  header = header.all_inner_texts()
  assert header[1:-1] == [f"AU{au}" for au in DISFA_PLUS_AUS]
  assert page.locator("#tables table.epochs tbody tr").count() == 3
  page.context.close()


@pytest.mark.slow
def test_the_page_of_an_unfinished_run(reference_run, browser, tmp_path):
  """A run interrupted after its first epoch, then one with no record."""
  run = tmp_path / "run<i>"
  run.mkdir()
  shutil.copy(reference_run / workdir.CONFIG_FILE, run)
  records = workdir.read_records(reference_run)
  first_eval = next(i for i, r in enumerate(records) if r["kind"] == "eval")
  (run / workdir.METRICS_FILE).write_text(
    "".join(json.dumps(r) + "\n" for r in records[: first_eval + 1])
  )
  page = _open(
    browser,
    pathlib.Path(run_page.write(str(run))),
    ["#results table.scores", "#curves img.curve"],
    tmp_path / "unfinished.png",
  )
  assert page.locator("header i").count() == 0, "the path was escaped"
  text = page.locator("#results").inner_text()
  assert "not finished" in text and "Not chosen yet: 1 of 3 epochs" in text
  page.context.close()

  (run / workdir.METRICS_FILE).unlink()
  page = _open(
    browser,
    pathlib.Path(run_page.write(str(run))),
    ["#results", "#config"],
    tmp_path / "empty.png",
  )
  assert "No evaluation yet" in page.locator("#results").inner_text()
  page.context.close()


@pytest.mark.slow
def test_bad_inputs_of_the_report_command(reference_run, tmp_path, capsys):
  not_a_run = tmp_path / "photos"
  not_a_run.mkdir()
  folds = tmp_path / "folds"
  (folds / "fold1").mkdir(parents=True)
  shutil.copy(reference_run / workdir.CONFIG_FILE, folds / "fold1")
  a_file = tmp_path / "notes.txt"
  a_file.write_text("x")
  cases = [
    ([str(tmp_path / "gone")], f"{tmp_path / 'gone'} does not exist"),
    ([str(a_file)], f"{a_file} is a file"),
    ([str(not_a_run)], f"{not_a_run} is not a training work directory"),
    ([str(folds)], f"{folds} holds the runs of --fold all: pass one"),
    (
      [str(reference_run), "--out", str(a_file / "page.html")],
      f"cannot write {a_file / 'page.html'} (",
    ),
    (
      [str(reference_run), "--out", str(not_a_run)],
      f"cannot write {not_a_run} (",
    ),
  ]
  for argv, message in cases:
    assert report_command.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
  assert sorted(os.listdir(tmp_path)) == ["folds", "notes.txt", "photos"]
  assert os.listdir(not_a_run) == []


def test_a_page_that_fails_leaves_the_run_alone(tmp_path):
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  run_page.logger.addHandler(handler)  # whatever the commands' logging is
  try:
    assert run_page.write_after_training(str(tmp_path)) is None
  finally:
    run_page.logger.removeHandler(handler)
  [line] = [r.getMessage() for r in records]
  assert line.startswith("report.html not written: ") and "\n" not in line


def test_the_templates_are_package_data():
  """A normal install carries every template (pyproject's package-data)."""
  tomllib = pytest.importorskip("tomllib")  # Python 3.11
  with open(ROOT / "pyproject.toml", "rb") as f:
    data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
  package = ROOT / "drml_jax" / "rendering"
  declared = {
    p for pattern in data["drml_jax.rendering"] for p in package.glob(pattern)
  }
  assert set((package / "templates").iterdir()) <= declared
