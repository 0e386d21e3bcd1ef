"""Live AUs: sources read newest first, one JSON line per frame as the source
plays, the server's endpoints and page, and bad input and abuse."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import aiohttp
import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from data_pipeline.sources.base import DataError
from drml_jax import serve
from drml_jax.benchmark import sample_media
from drml_jax.live import __main__ as live
from drml_jax.live import analysis, server, sources, worker
from drml_jax.model import factory
from drml_jax.predict import __main__ as predict
from drml_jax.predict import programs, stream
from drml_jax.store import checkpoint
from tests import browser_support
from tests import train_support as support

AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
MODEL_CONFIG = {
  "num_aus": 12,
  "input_size": 66,
  "grid": (2, 2),  # a region conv per cell, each compiled apart: few is quick
  "init": "he",
  "dropout": 0.0,
  "intensity": True,  # the answers carry AUxx_r
}
# Live against offline predict: the same crops run in batches of other
# sizes, so XLA's float32 sums differ in order (up to 1.4e-6 measured in
# tests/test_predict.py), and both round to 6 decimals (5e-7).
PROBABILITY_ATOL = 1e-5
CLIP_FRAMES, CLIP_FPS = 8, 2.0  # slow enough that no frame is dropped
WAIT_S = 60  # the most a test waits for a subprocess's output


@pytest.fixture(scope="module")
def drml():
  """A tiny random DRML whose probabilities spread over (0, 1), with the
  intensity head."""
  model = factory.build_model(MODEL_CONFIG, seed=3)
  model.fc3.kernel[...] = model.fc3.kernel[...] * 30
  model.fc_intensity.kernel[...] = model.fc_intensity.kernel[...] * 30
  return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, drml):
  """Its checkpoint, for the commands."""
  path = tmp_path_factory.mktemp("live_model") / "checkpoints"
  checkpoint.save_model(
    path, drml, MODEL_CONFIG, checkpoint.Inputs(aus=AUS, input_size=66)
  )
  return path


@pytest.fixture(scope="module")
def predictor(drml):
  return programs.predictor_of(drml, AUS, input_size=66)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  path = tmp_path_factory.mktemp("live_clip") / "clip.mp4"
  sample_media.write_clip(
    str(path), "one", frames=CLIP_FRAMES, size=(320, 240), fps=CLIP_FPS
  )
  return path


def _jpeg(image: np.ndarray) -> bytes:
  return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[
    1
  ].tobytes()


@pytest.fixture(scope="module")
def clip_jpegs(clip):
  return sample_media.jpeg_frames(str(clip))


def _rows(path) -> list[dict]:
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _assert_same_rows(rows, expected):
  """Rows equal as predict writes them: AU probabilities (and intensities)
  within PROBABILITY_ATOL, every other cell the same."""
  assert len(rows) == len(expected)
  for row, want in zip(rows, expected):
    for name, value in want.items():
      if name.startswith("AU") and not name.endswith("_c") and value:
        assert float(row[name]) == pytest.approx(
          float(value), abs=PROBABILITY_ATOL
        )
      else:
        assert row[name] == value, name


def _assert_face_is_row(face: dict, row: dict, atol: float) -> None:
  """A JSON face against a CSV row: the same names, a blank cell for None,
  AU probabilities within `atol`, every other value equal."""
  for name, value in face.items():
    if value is None:
      assert row[name] == "", name
    elif name.startswith("AU") and not name.endswith("_c"):
      assert float(row[name]) == pytest.approx(value, abs=atol), name
    else:
      assert float(row[name]) == value, name


@pytest.mark.slow
def test_a_file_played_live_gives_offline_predicts_rows(
  tmp_path, clip, model_dir, capsys
):
  out = tmp_path / "live.csv"
  argv = [str(clip), "--checkpoint", str(model_dir), "--engine", "jax"]
  assert live.main([*argv, "--out", str(out)]) == 0
  captured = capsys.readouterr()
  records = [json.loads(line) for line in captured.out.splitlines()]
  assert [r["frame"] for r in records] == list(range(CLIP_FRAMES))
  assert records[-1]["dropped"] == 0
  assert f"{CLIP_FRAMES} frames seen, {CLIP_FRAMES} processed" in captured.err
  assert "end of file" in captured.err
  # Played at its own rate: the frames came 1 / CLIP_FPS apart.
  captures = np.array([r["capture_time"] for r in records])
  assert np.diff(captures).min() > 0.8 / CLIP_FPS
  for r in records:
    assert r["latency_ms"] == pytest.approx(
      1000 * (r["ready_time"] - r["capture_time"]), abs=1.5
    )
  offline = tmp_path / "offline.csv"
  assert (
    predict.main(
      [
        str(clip),
        "--checkpoint",
        str(model_dir),
        "--out",
        str(offline),
        "--no-progress",
      ]
    )
    == 0
  )
  rows, expected = _rows(out), _rows(offline)
  _assert_same_rows(rows, expected)
  # The JSON's faces carry the CSV's names and values.
  faces = [face for r in records for face in r["faces"]]
  found = [row for row in rows if row["success"] == "1"]
  assert len(faces) == len(found) >= CLIP_FRAMES // 2
  for face, row in zip(faces, found):
    _assert_face_is_row(face, row, atol=0.0)


@pytest.mark.slow
def test_a_network_stream_answers_while_it_plays_and_ctrl_c_summarises(
  tmp_path, clip_jpegs, model_dir
):
  with sample_media.serve_mjpeg(clip_jpegs, fps=60.0) as url:
    arrivals, summary, returncode = _live_until_20_lines(
      url, tmp_path, model_dir
    )
  assert returncode == 0, summary
  assert "stopped by a signal" in summary
  seen, processed, dropped = (
    int(summary.split(word)[0].split()[-1])
    for word in (" frames seen", " processed", " dropped")
  )
  records = [record for _, record in arrivals]
  assert processed == len(records) and "latency p50" in summary
  assert processed + dropped <= seen <= processed + dropped + 1
  # Served faster than the model runs: frames were dropped, not queued,
  # and each record's frame number counts them.
  indices = [r["frame"] for r in records]
  assert dropped > 0 and indices == sorted(set(indices))
  assert sum(np.diff(indices) - 1) <= dropped


def _live_until_20_lines(url, tmp_path, model_dir):
  """`python -m drml_jax.live URL --out CSV` until 20 JSON lines came (each
  checked as it came, the CSV beside them), then SIGINT: (the lines with
  their arrival times, the last line on stderr, the exit status)."""
  out = tmp_path / "stream.csv"
  process = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "drml_jax.live",
      url,
      "--checkpoint",
      str(model_dir),
      "--engine",
      "jax",
      "--out",
      str(out),
    ],
    cwd=support.ROOT,
    env=support.env(),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  arrivals = []
  reader = threading.Thread(
    target=lambda: arrivals.extend(
      (time.time(), json.loads(line)) for line in process.stdout
    ),
    daemon=True,
  )
  reader.start()
  try:
    deadline = time.time() + WAIT_S
    while len(arrivals) < 20 and process.poll() is None:
      assert time.time() < deadline, "no JSON lines while the stream plays"
      time.sleep(0.05)
    # Lines come as frames are processed, each flushed at once; the CSV
    # grows with them.
    assert len(arrivals) >= 20, process.stderr.read()
    for arrived, record in arrivals[:20]:
      assert arrived - record["ready_time"] < 1.0
    assert len(_rows(out)) >= 19
    process.send_signal(signal.SIGINT)
    process.wait(timeout=WAIT_S)
  finally:
    process.kill()
  reader.join(timeout=5)
  summary = process.stderr.read().strip().splitlines()[-1]
  return arrivals, summary, process.returncode


def test_sources_that_cannot_be_read_are_one_line(tmp_path):
  (tmp_path / "photo.png").write_bytes(b"")
  for spec, expected in [
    ("7", "camera 7 cannot be opened"),
    ("http://127.0.0.1:1/live.mjpg", "the stream cannot be opened"),
    (str(tmp_path / "missing.mp4"), "no such file"),
    (str(tmp_path / "photo.png"), "not a video file"),
  ]:
    with pytest.raises(DataError, match=expected) as error:
      sources.open_source(spec)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("after", ["close", "stall"])
def test_a_stream_that_ends_or_stalls_ends_the_run(clip_jpegs, after):
  with sample_media.serve_mjpeg(clip_jpegs, 30.0, limit=3, after=after) as url:
    with sources.Latest(sources.open_source(url, stall_s=1.0)) as latest:
      frames = []
      start = time.monotonic()
      while (frame := latest.next()) is not None:
        frames.append(frame)
      waited = time.monotonic() - start
  assert 1 <= len(frames) <= 3 and latest.seen == 3
  assert latest.ended and waited < 10
  if after == "stall":
    assert "no frame for 1 s" in latest.ended


def test_latency_percentiles_in_a_fixed_histogram():
  latencies = analysis.Latencies()
  assert latencies.percentile(50) is None
  for value in [5.2, 10.9, 20.0, 30.5, 1e9]:
    latencies.add(value)
  assert latencies.percentile(50) == 20
  assert latencies.percentile(95) == analysis.LATENCY_BINS_MS
  assert latencies.counts.nbytes == 8 * (analysis.LATENCY_BINS_MS + 1)


# The server.


def _astronaut_png() -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(data.astronaut()).save(buffer, format="PNG")
  return buffer.getvalue()


async def _post(session, url, body, content_type="image/png", **headers):
  async with session.post(
    url + "aus", data=body, headers={"Content-Type": content_type, **headers}
  ) as response:
    return response.status, await response.json()


def test_a_photo_posted_gets_predicts_row(predictor, tmp_path):
  png = _astronaut_png()
  (tmp_path / "astronaut.png").write_bytes(png)
  # Predict's own stream on the file: what `python -m drml_jax.predict` writes.
  [offline] = stream.Stream(lambda: predictor)(
    [str(tmp_path / "astronaut.png")], on_error=pytest.fail
  )
  columns = stream.COLUMNS + tuple(stream.au_columns(AUS, intensity=True))
  [row] = [
    dict(zip(columns, map(str, cells), strict=True))
    for cells in stream.csv_rows(offline, AUS, intensity=True)
  ]
  with server.running(predictor) as url:

    async def ask():
      async with aiohttp.ClientSession() as session:
        return await _post(session, url, png)

    status, record = asyncio.run(ask())
  assert status == 200 and record["source"] == "photo"
  [face] = record["faces"]
  # The intensity head's values follow the occurrences, in [0, 5].
  assert list(face)[-36:] == list(columns)[-36:]
  assert all(0 <= face[f"AU{au:02d}_r"] <= 5 for au in AUS)
  _assert_face_is_row(face, row, atol=PROBABILITY_ATOL)


def test_bad_requests_get_a_reason_and_the_server_serves_on(
  predictor, monkeypatch
):
  monkeypatch.setattr(worker, "MAX_FRAME_BYTES", 200_000)
  wide = io.BytesIO()
  Image.new("RGB", (5000, 8)).save(wide, format="PNG")  # small bytes, wide
  good = _jpeg(
    np.asarray(Image.open(io.BytesIO(_astronaut_png())).resize((256, 256)))
  )
  cases = [
    (b"", "image/png", 400, "empty frame"),
    (b"GIF89a but not really", "image/png", 400, "not an image"),
    (good, "text/plain", 415, "Content-Type text/plain"),
    (b"\xff" * 300_000, "image/jpeg", 413, "the limit is 200000"),
    (wide.getvalue(), "image/png", 413, "5000x8 pixels"),
  ]
  with server.running(predictor) as url:

    async def ask():
      async with aiohttp.ClientSession() as session:
        answers = [await _post(session, url, *case[:2]) for case in cases]
        foreign = await _post(
          session, url, good, "image/jpeg", Origin="http://elsewhere.example"
        )
        after = await _post(session, url, good, "image/jpeg")
        async with session.get(url + "nothing") as missing:
          missing = missing.status, await missing.json()
        async with session.put(url + "aus") as method:
          method = method.status, await method.json()
        return answers, foreign, after, missing, method

    answers, foreign, after, missing, method = asyncio.run(ask())
  for (_, _, status, reason), (got, answer) in zip(cases, answers):
    assert got == status and reason in answer["error"], answer
    assert "\n" not in answer["error"]
  assert foreign[0] == 403
  assert after[0] == 200 and len(after[1]["faces"]) == 1
  assert missing[0] == 404 and "GET /nothing" in missing[1]["error"]
  assert method[0] == 405 and "PUT /aus" in method[1]["error"]


def test_serve_refuses_a_taken_port_before_loading_a_model(tmp_path, capsys):
  with socket.create_server(("127.0.0.1", 0)) as taken:
    port = taken.getsockname()[1]
    argv = ["--checkpoint", str(tmp_path / "none"), "--port", str(port)]
    assert serve.main(argv) == 2
  [line] = capsys.readouterr().err.strip().splitlines()
  assert f"cannot listen on 127.0.0.1 port {port}" in line


def test_websocket_frames_flood_errors_and_clients_that_leave(
  predictor, monkeypatch
):
  monkeypatch.setattr(worker, "MAX_FRAME_BYTES", 200_000)
  monkeypatch.setattr(server, "MESSAGE_LIMIT", 400_000)
  monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
  frame = _jpeg(cv2.resize(data.astronaut(), (320, 320)))

  async def talk(url):
    async with aiohttp.ClientSession() as session:
      ws_url = url.replace("http", "ws") + "frames"
      # A client that leaves with its frame in the worker.
      leaving = await session.ws_connect(ws_url)
      await leaving.send_bytes(frame)
      await leaving.close()
      async with session.ws_connect(ws_url) as socket:
        # A flood: 30 frames at once. The newest is answered; the others
        # are answered or dropped, and the answers count the dropped.
        for _ in range(30):
          await socket.send_bytes(frame)
        answers = []
        while not answers or answers[-1]["frame"] != 29:
          answers.append(
            json.loads((await socket.receive(timeout=WAIT_S)).data)
          )
        await socket.send_str("hello")
        text = json.loads((await socket.receive(timeout=WAIT_S)).data)
        await socket.send_bytes(b"not an image")
        bad = json.loads((await socket.receive(timeout=WAIT_S)).data)
        await socket.send_bytes(b"\xff" * 300_000)
        big = json.loads((await socket.receive(timeout=WAIT_S)).data)
        await socket.send_bytes(frame)
        last = json.loads((await socket.receive(timeout=WAIT_S)).data)
        # One more client is what MAX_CONNECTIONS allows; then busy.
        async with session.ws_connect(ws_url) as second:
          with pytest.raises(aiohttp.WSServerHandshakeError) as busy:
            await session.ws_connect(ws_url)
          await second.send_bytes(frame)
          other = json.loads((await second.receive(timeout=WAIT_S)).data)
        await socket.send_bytes(b"\xff" * 500_000)
        closed = await socket.receive(timeout=WAIT_S)
      return answers, text, bad, big, last, busy.value.status, other, closed

  with server.running(predictor) as url:
    answers, text, bad, big, last, busy, other, closed = asyncio.run(talk(url))
  frames = [a["frame"] for a in answers]
  assert frames == sorted(set(frames)) and len(frames) < 30
  assert answers[-1]["dropped"] == 30 - len(frames)
  assert all(
    len(a["faces"]) == 1 and a["source"] == answers[0]["source"]
    for a in answers
  )
  ids = {a["faces"][0]["face_id"] for a in answers}
  assert ids == {0}  # one person, one id across the connection's frames
  assert "binary messages" in text["error"]
  assert bad["frame"] == 30 and "not an image" in bad["error"]
  assert big["frame"] == 31 and "the limit is 200000" in big["error"]
  assert last["frame"] == 32 and len(last["faces"]) == 1
  assert busy == 503
  assert len(other["faces"]) == 1 and other["source"] != answers[0]["source"]
  assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1009


def test_more_photos_than_the_queue_holds_get_busy(predictor, monkeypatch):
  monkeypatch.setattr(worker, "MAX_WAITING_PHOTOS", 1)
  photo = _jpeg(cv2.resize(data.astronaut(), (256, 256)))
  with server.running(predictor) as url:

    async def flood():
      async with aiohttp.ClientSession() as session:
        return await asyncio.gather(
          *(_post(session, url, photo, "image/jpeg") for _ in range(6))
        )

    answers = asyncio.run(flood())
  statuses = sorted(status for status, _ in answers)
  assert statuses[0] == 200 and set(statuses) <= {200, 503}
  assert all(
    "busy" in answer["error"] for status, answer in answers if status == 503
  )


@pytest.mark.slow
def test_the_live_page_in_a_browser_with_a_fake_camera(
  predictor, clip, tmp_path
):
  y4m = sample_media.write_y4m(str(tmp_path / "camera.y4m"), str(clip))
  with (
    browser_support.chromium(
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      f"--use-file-for-fake-video-capture={y4m}",
    ) as browser,
    server.running(predictor) as url,
  ):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    problems, requests, answers = [], [], []
    page.on(
      "console",
      lambda m: problems.append(m.text) if m.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.on(
      "websocket",
      lambda ws: ws.on("framereceived", lambda text: answers.append(text)),
    )
    page.goto(url)
    page.click("#record")
    deadline = time.time() + WAIT_S
    while page.evaluate("window.live.answered") < 10:
      assert time.time() < deadline, page.inner_text("#problem") or problems
      time.sleep(0.1)
    page.click("#record")
    # What the page shows, read at one moment: the last answer and the bars.
    shown, bars = page.evaluate(
      "[window.live.shown, Array.from(document.querySelectorAll('#bars tr'),"
      " r => [r.dataset.au, r.dataset.p, r.dataset.r])]"
    )
    boxes = page.eval_on_selector("#overlay", "c => [c.width, c.height]")
    with page.expect_download() as download:
      page.click("#download")
    recorded = list(
      csv.DictReader(open(download.value.path(), encoding="utf-8"))
    )
    page.screenshot(path=str(tmp_path / "live.png"))
    browser_support.keep_shot("live", tmp_path / "live.png")
  assert not problems, problems
  assert {r.split("/")[2] for r in requests} == {url.split("/")[2]}
  # The bars show the server's own numbers for the frame last answered.
  received = [json.loads(text) for text in answers]
  assert shown in received and shown["faces"]
  face = min(shown["faces"], key=lambda f: f["face_id"])
  assert [name for name, _, _ in bars] == [f"AU{au:02d}" for au in AUS]
  assert all(float(p) == face[name] for name, p, _ in bars)
  # And each AU's intensity beside its bar.
  assert all(float(r) == face[f"{name}_r"] for name, _, r in bars)
  assert boxes == [320, 240]
  assert len(recorded) >= 5 and recorded[0]["face_id"] == "0"
  assert {f"AU{au:02d}{s}" for au in AUS for s in ("", "_r")} <= set(
    recorded[0]
  )
