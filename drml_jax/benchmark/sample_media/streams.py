"""A video as a live network stream: its frames served as HTTP MJPEG.

  frames = jpeg_frames("clip.mp4")
  with serve_mjpeg(frames, fps=30) as url:   # http://127.0.0.1:PORT/live.mjpg
    ...                                       # python -m drml_jax.live URL

The frames are sent in a loop at `fps` (by the clock, so a slow client gets
them late, not slower), to every client, until the block ends; with `limit`
only that many, then the connection is closed ("close") or held open,
silent ("stall"): a stream that ends, or one that stalls.
"""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import threading
import time

import cv2


def jpeg_frames(video: str) -> list[bytes]:
  """Every frame of `video`, JPEG-encoded."""
  capture, frames = cv2.VideoCapture(video), []
  while (read := capture.read())[0]:
    frames.append(cv2.imencode(".jpg", read[1])[1].tobytes())
  capture.release()
  return frames


@contextlib.contextmanager
def serve_mjpeg(
  frames: list[bytes],
  fps: float,
  limit: int | None = None,
  after: str = "close",
):
  """Serves `frames` as an MJPEG stream on a free local port while the
  block runs; yields its URL."""
  stop = threading.Event()

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
      self.send_response(200)
      self.send_header(
        "Content-Type", "multipart/x-mixed-replace; boundary=frame"
      )
      self.end_headers()
      start, count = time.monotonic(), 0
      with contextlib.suppress(ConnectionError):
        while not stop.is_set() and count != limit:
          frame = frames[count % len(frames)]
          self.wfile.write(
            b"--frame\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: %d\r\n\r\n%s\r\n" % (len(frame), frame)
          )
          self.wfile.flush()
          count += 1
          stop.wait(max(0.0, start + count / fps - time.monotonic()))
        if after == "stall":
          stop.wait()

    def log_message(self, *args):  # pylint: disable=arguments-differ
      pass

  server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
  server.daemon_threads = True
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}/live.mjpg"
  finally:
    stop.set()
    server.shutdown()
    server.server_close()
