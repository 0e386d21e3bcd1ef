"""Live prediction's figures: frames/s, latency, memory over time, the page, many clients.

  python -m drml_jax.benchmark.live --workdir workdirs/quick
  python -m drml_jax.benchmark.live --workdir W --memory-minutes 0 --load-seconds 20

The source is `sample_media.write_clip("one")` at 640x480 and 30 frames/s:
one face moving, zooming and rolling. Every row runs the commands as a
user does, in fresh processes (the model from the cache, as after a first
run):
  live, ENGINE     `python -m drml_jax.live CLIP --engine ENGINE`, the clip
                   played at its rate for --seconds: frames processed per
                   second, dropped, latency from capture to result (p50,
                   p95), from the JSON lines
  live, memory     the same command on an HTTP MJPEG stream of the clip
                   looped for --memory-minutes: its RSS after the first
                   minute and its largest after that
  page             `python -m drml_jax.serve` and headless Chromium whose
                   fake camera plays the clip: frames answered per second
                   and the time from the browser's capture of a frame to
                   its bars drawn (p50, p95), as the page measures it
  clients          --clients programs on the /frames WebSocket, each
                   sending the clip's frames at --client-fps for
                   --load-seconds without waiting: answers per client,
                   errors, latency from send to answer (p50, p95), the
                   server's peak RSS
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from drml_jax import cli
from drml_jax.benchmark import sample_media
from drml_jax.rendering.tables import markdown_table

SIZE, FPS = (640, 480), 30.0
ROWS = ("live", "page", "clients", "memory")
TARGETS = {
  "live": ">= 20 frames/s; p50 <= 80 ms, p95 <= 150 ms",
  "memory": "growth <= 50 MB after the first minute",
  "page": "p95 <= 250 ms",
  "clients": "no error, every client answered",
}


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
  with open(f"/proc/{pid}/status", encoding="ascii") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024
  raise ValueError(f"no {field} for process {pid}")


def _percentiles(values) -> str:
  if not len(values):
    return "-"
  p50, p95 = np.percentile(values, [50, 95])
  return f"{p50:.0f} / {p95:.0f} ms"


def _start(module: str, *argv: str) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, "-m", module, *argv],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _records(process: subprocess.Popen, seconds: float) -> list[dict]:
  """The JSON lines of a live process for `seconds` after its first one,
  then Ctrl-C; raises ValueError with its last line if it fails."""
  records, first = [], None
  for line in process.stdout:
    records.append(json.loads(line))
    first = first or time.monotonic()
    if time.monotonic() - first > seconds:
      process.send_signal(2)
      break
  process.wait()
  if not records:
    raise ValueError(f"live failed: {process.stderr.read().strip()[-300:]}")
  return records


def live_row(engine: str, clip: str, model: list[str], seconds: float) -> list:
  process = _start("drml_jax.live", clip, *model, "--engine", engine)
  records = _records(process, seconds)
  span = records[-1]["ready_time"] - records[0]["capture_time"]
  return [
    f"live, {engine}",
    f"{(len(records) - 1) / span:.1f} frames/s; {records[-1]['dropped']} of"
    f" {records[-1]['seen']} dropped",
    _percentiles([r["latency_ms"] for r in records[1:]]),
    "",
    TARGETS["live"],
  ]


def memory_row(frames: list[bytes], model: list[str], minutes: float) -> list:
  with sample_media.serve_mjpeg(frames, FPS) as url:
    process = _start("drml_jax.live", url, *model)
    samples = []
    start = time.monotonic()
    drain = threading.Thread(target=lambda: sum(1 for _ in process.stdout))
    drain.start()
    while time.monotonic() - start < 60 * minutes and process.poll() is None:
      time.sleep(5)
      samples.append((time.monotonic() - start, _rss_mb(process.pid)))
    process.send_signal(2)
    process.wait()
    drain.join()
  after = [rss for t, rss in samples if t >= 60]
  if not after:
    raise ValueError(f"live stopped: {process.stderr.read().strip()[-300:]}")
  return [
    f"live, memory over {minutes:g} min",
    f"RSS {after[0]:.0f} MB at 1 min, at most {max(after):.0f} MB after",
    "",
    f"growth {max(after) - after[0]:+.0f} MB",
    TARGETS["memory"],
  ]


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@contextlib.contextmanager
def _server(model: list[str]):
  """`python -m drml_jax.serve` on a free port: (its URL, its process)."""
  port = _free_port()
  process = _start("drml_jax.serve", *model, "--port", str(port))
  for line in process.stdout:
    if line.startswith("serving "):
      break
  else:
    raise ValueError(f"serve failed: {process.stderr.read().strip()[-300:]}")
  try:
    yield f"http://127.0.0.1:{port}/", process
  finally:
    process.send_signal(2)
    process.wait()


def page_row(clip: str, model: list[str], seconds: float, folder: str) -> list:
  # Imported here: the browser, for this row only.
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel

  executable = shutil.which("chromium") or shutil.which("chromium-browser")
  if executable is None:
    return ["page", "skipped: no chromium binary", "", "", TARGETS["page"]]
  camera = sample_media.write_y4m(os.path.join(folder, "camera.y4m"), clip)
  with _server(model) as (url, _), sync_playwright() as playwright:
    browser = playwright.chromium.launch(
      executable_path=executable,
      args=[
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
      ],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    time.sleep(seconds)
    answered, latencies = page.evaluate(
      "[window.live.answered, window.live.latencies]"
    )
    browser.close()
  return [
    "page (Chromium, fake camera)",
    f"{answered / seconds:.1f} frames/s answered",
    "",
    f"bars drawn {_percentiles(latencies)} after capture",
    TARGETS["page"],
  ]


async def _client(url: str, frames: list[bytes], fps: float, seconds: float):
  """Sends frames at `fps` for `seconds`; (latencies in ms, answers, errors)."""
  import aiohttp  # pylint: disable=import-outside-toplevel

  sent, latencies, errors = {}, [], 0
  async with aiohttp.ClientSession() as session:
    async with session.ws_connect(url.replace("http", "ws") + "frames") as ws:

      async def receive():
        nonlocal errors
        async for message in ws:
          answer = json.loads(message.data)
          if "error" in answer:
            errors += 1
          else:
            latencies.append(1000 * (time.monotonic() - sent[answer["frame"]]))

      receiving = asyncio.ensure_future(receive())
      start = time.monotonic()
      for index in range(int(seconds * fps)):
        await asyncio.sleep(max(0.0, start + index / fps - time.monotonic()))
        sent[index] = time.monotonic()
        await ws.send_bytes(frames[index % len(frames)])
      await asyncio.sleep(1.0)  # the last answers
      await ws.close()
      await receiving
  return latencies, errors


def clients_row(
  frames: list[bytes],
  model: list[str],
  clients: int,
  fps: float,
  seconds: float,
) -> list:
  with _server(model) as (url, process):

    async def everyone():
      return await asyncio.gather(
        *(_client(url, frames, fps, seconds) for _ in range(clients)),
        return_exceptions=True,
      )

    results = asyncio.run(everyone())
    peak = _rss_mb(process.pid, "VmHWM")
  failed = [r for r in results if isinstance(r, BaseException)]
  done = [r for r in results if not isinstance(r, BaseException)]
  latencies = [ms for got, _ in done for ms in got]
  answers = [len(got) for got, _ in done]
  errors = sum(e for _, e in done) + len(failed)
  return [
    f"{clients} clients x {fps:g} frames/s, {seconds:g} s",
    f"answers per client {min(answers, default=0)}-{max(answers, default=0)}"
    f" of {int(seconds * fps)}; {errors} errors",
    _percentiles(latencies),
    f"server peak RSS {peak:.0f} MB",
    TARGETS["clients"],
  ]


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.benchmark.live", __doc__)
  cli.add_model_flags(parser)
  parser.add_argument(
    "--rows",
    default=",".join(ROWS),
    help="which rows, comma-separated (default: %(default)s)",
  )
  parser.add_argument("--seconds", type=float, default=20.0)
  parser.add_argument("--memory-minutes", type=float, default=10.0)
  parser.add_argument("--clients", type=cli.positive_int, default=8)
  parser.add_argument("--client-fps", type=float, default=10.0)
  parser.add_argument("--load-seconds", type=float, default=60.0)
  return parser.parse_args(argv)


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  args = parse_args(argv)
  model = (
    ["--workdir", args.workdir]
    if args.workdir
    else ["--checkpoint", args.checkpoint]
  )
  if args.aus:
    model += ["--aus", ",".join(map(str, args.aus))]
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    clip = os.path.join(folder, "clip.mp4")
    sample_media.write_clip(
      clip, "one", frames=int(FPS * 20), size=SIZE, fps=FPS
    )
    frames = sample_media.jpeg_frames(clip)
    chosen = args.rows.split(",")
    if "live" in chosen:
      for engine in ("onnxruntime", "jax"):
        rows.append(live_row(engine, clip, model, args.seconds))
    if "page" in chosen:
      rows.append(page_row(clip, model, args.seconds, folder))
    if "clients" in chosen:
      rows.append(
        clients_row(
          frames, model, args.clients, args.client_fps, args.load_seconds
        )
      )
    if "memory" in chosen and args.memory_minutes > 0:
      rows.append(memory_row(frames, model, args.memory_minutes))
  print(
    markdown_table(
      ["row", "throughput", "latency p50 / p95", "also", "target"], rows
    )
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
