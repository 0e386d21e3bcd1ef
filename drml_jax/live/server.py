"""The live page and its endpoints: AUs for a browser's camera and for programs.

  app = server.application(predictor)
  web.run_app(app, host="127.0.0.1", port=8000)

Routes:
  GET  /        the page (`drml_jax/rendering/templates/live.html`): the
                browser's own camera, its frames sent over /frames, each
                face's box and id, a bar per AU against its threshold, the
                last 30 s as a timeline, and a recording downloaded as CSV;
  POST /aus     one image (Content-Type image/jpeg, image/png, image/webp or
                image/bmp) -> its JSON record (`analysis.record`), every
                detector pass as for a photo;
  GET  /frames  a WebSocket: each binary message is a frame (the same
                types), answered by one JSON text message, faces tracked
                across the connection's frames.

One worker thread (`worker.Worker`) runs the detector and the model for
everyone; a connection holds at most one frame waiting there, a newer one
replacing it. Limits, each refused with a JSON reason and the server
serving on: the worker's frame limits (413) and photo queue (503), bytes
that do not decode (400); here, a WebSocket message over MESSAGE_LIMIT
(the socket closes, code 1009), MAX_CONNECTIONS WebSockets (503, busy), a
type that is not an image (415), a request whose Origin is another site's
(403: a page elsewhere cannot use this server through the user's
browser), and aiohttp's own 404 and 405 (`json_errors`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import threading
import time

from aiohttp import WSCloseCode, WSMsgType, web

from drml_jax.live import analysis, worker
from drml_jax.live.worker import Pending, Refused, Worker
from drml_jax.predict.predictor import BatchedPredictor, au_name
from drml_jax.rendering import html

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")
MESSAGE_LIMIT = (
  4 * worker.MAX_FRAME_BYTES
)  # a WebSocket message larger closes it
MAX_CONNECTIONS = 16  # WebSockets at once
# The page and the answers load nothing from elsewhere; the page connects
# to this server alone.
CONTENT_SECURITY_POLICY = (
  "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; "
  "script-src 'unsafe-inline'; connect-src 'self'; media-src blob:"
)
PAGE_TEMPLATE = "live.html"
WORKER = web.AppKey("worker", Worker)
PAGE = web.AppKey("page", str)
SOCKETS = web.AppKey("sockets", dict)  # the open WebSockets, by id
IDS = web.AppKey("ids", itertools.count)


def _error(status: int, reason: str, **headers) -> web.Response:
  return web.json_response({"error": reason}, status=status, headers=headers)


def _foreign_origin(request: web.Request) -> bool:
  """A browser request made by a page of another site than this server."""
  origin = request.headers.get("Origin")
  if origin is None:
    return False  # a program, not a browser
  return origin.split("://", 1)[-1] != request.host


async def page(request: web.Request) -> web.Response:
  return web.Response(
    text=request.app[PAGE],
    content_type="text/html",
    headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
  )


async def photo(request: web.Request) -> web.Response:
  """POST /aus: one image's record."""
  if _foreign_origin(request):
    return _error(403, "requests from other sites' pages are refused")
  if request.content_type not in IMAGE_TYPES:
    return _error(
      415,
      f"Content-Type {request.content_type or 'none'}: send one of "
      + ", ".join(IMAGE_TYPES),
    )
  if (request.content_length or 0) > worker.MAX_FRAME_BYTES:
    return _error(
      413,
      f"body of {request.content_length} bytes; the limit is"
      f" {worker.MAX_FRAME_BYTES}: send a smaller image",
    )
  try:
    data = await request.read()
  except web.HTTPRequestEntityTooLarge:
    return _error(
      413,
      f"body over the limit of {worker.MAX_FRAME_BYTES} bytes: send a smaller image",
    )
  app = request.app
  answer = asyncio.get_running_loop().create_future()
  pending = Pending(data, time.time(), 0.0, 0, answer, None)
  try:
    app[WORKER].put_photo(pending)
  except Refused as refused:
    return _error(refused.status, refused.reason, **{"Retry-After": "1"})
  result = await answer
  if isinstance(result, Refused):
    return _error(result.status, result.reason)
  result["source"] = "photo"
  return web.json_response(result)


async def frames(request: web.Request) -> web.StreamResponse:
  """GET /frames: a WebSocket of frames in, records out."""
  app = request.app
  if _foreign_origin(request):
    return _error(403, "connections from other sites' pages are refused")
  sockets = app[SOCKETS]
  if len(sockets) >= MAX_CONNECTIONS:
    return _error(
      503,
      f"busy: {len(sockets)} clients connected, the most this server"
      " takes; retry later",
      **{"Retry-After": "5"},
    )
  # Messages up to MESSAGE_LIMIT are read and refused with a reason; a
  # larger one closes the socket (code 1009).
  socket = web.WebSocketResponse(max_msg_size=MESSAGE_LIMIT)
  await socket.prepare(request)
  connection = next(app[IDS])
  sockets[connection] = socket
  jobs = app[WORKER]
  viewer = jobs.analyst.viewer()
  opened = time.monotonic()
  received = dropped = 0
  answers: set[asyncio.Task] = set()

  async def answer(pending: Pending) -> None:
    result = await pending.answer
    if isinstance(result, Refused):
      message = {"frame": pending.index, "error": result.reason}
    else:
      message = {
        **result,
        "source": f"client {connection}",
        "received": received,
        "dropped": dropped,
      }
    if not socket.closed:
      try:
        await socket.send_str(json.dumps(message))
      except ConnectionError:
        pass  # the client left mid-frame

  try:
    async for message in socket:
      if message.type != WSMsgType.BINARY:
        if message.type == WSMsgType.TEXT:
          await socket.send_str(
            json.dumps(
              {"error": "send frames as binary messages: JPEG, PNG or WebP"}
            )
          )
        continue
      pending = Pending(
        message.data,
        time.time(),
        time.monotonic() - opened,
        received,
        asyncio.get_running_loop().create_future(),
        viewer,
      )
      received += 1
      replaced = jobs.put_frame(connection, pending)
      if replaced is not None:
        dropped += 1
        replaced.answer.cancel()
      task = asyncio.ensure_future(answer(pending))
      answers.add(task)
      task.add_done_callback(answers.discard)
  finally:
    jobs.forget(connection)
    for task in answers:
      task.cancel()
    del sockets[connection]
  return socket


def _page_text(predictor: BatchedPredictor) -> str:
  aus = [au_name(au) for au in predictor.aus]
  settings = {
    "aus": aus,
    "thresholds": [round(float(t), 6) for t in predictor.thresholds],
    "intensity": predictor.has_intensity,  # the answers carry AUxx_r
  }
  return html.render(
    PAGE_TEMPLATE,
    title="DRML live",
    subtitle=f"{predictor.description}: AUs {' '.join(aus)}",
    sections=[],
    footer="Frames go to this server only; nothing is loaded from elsewhere.",
    settings=settings,
    policy=CONTENT_SECURITY_POLICY,
  )


@web.middleware
async def json_errors(request: web.Request, handler):
  """aiohttp's own refusals (no such route, a method a route does not take)
  as the JSON every other refusal is."""
  try:
    return await handler(request)
  except web.HTTPException as error:
    if error.status < 400:
      raise
    return _error(
      error.status,
      f"{error.reason}: {request.method} {request.path}; this server"
      " answers GET /, POST /aus and the WebSocket /frames",
    )


def application(predictor: BatchedPredictor) -> web.Application:
  """The server's app: the page, POST /aus and the /frames WebSocket."""
  app = web.Application(
    client_max_size=worker.MAX_FRAME_BYTES, middlewares=[json_errors]
  )
  jobs = Worker(analysis.Analyst(predictor))
  app[WORKER] = jobs
  app[PAGE] = _page_text(predictor)
  app[SOCKETS] = {}
  app[IDS] = itertools.count()

  async def lifetime(app: web.Application):
    jobs.start()
    yield
    jobs.stop()

  async def close_sockets(app: web.Application):
    for socket in list(app[SOCKETS].values()):
      await socket.close(
        code=WSCloseCode.GOING_AWAY, message=b"the server is stopping"
      )

  app.cleanup_ctx.append(lifetime)
  app.on_shutdown.append(close_sockets)
  app.router.add_get("/", page)
  app.router.add_post("/aus", photo)
  app.router.add_get("/frames", frames)
  return app


@contextlib.contextmanager
def running(
  predictor: BatchedPredictor, host: str = "127.0.0.1", port: int = 0
):
  """Serves `application(predictor)` from a thread of its own (its own event
  loop) while the block runs; yields its URL (port 0: a free one)."""
  loop = asyncio.new_event_loop()
  runner = web.AppRunner(application(predictor), access_log=None)
  bound = concurrent.futures.Future()

  async def start():
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access

  def serve():
    asyncio.set_event_loop(loop)
    try:
      bound.set_result(loop.run_until_complete(start()))
    except BaseException as error:  # pylint: disable=broad-except
      bound.set_exception(error)
      return
    loop.run_forever()
    loop.run_until_complete(runner.cleanup())
    loop.close()

  thread = threading.Thread(target=serve, daemon=True)
  thread.start()
  try:
    yield f"http://{host}:{bound.result()}/"
  finally:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
