"""Serves the live page and its endpoints: your camera's AUs in the browser, and AUs for programs over HTTP.

  python -m drml_jax.serve --workdir workdirs/quick      # then open http://127.0.0.1:8000/
  python -m drml_jax.serve --onnx drml.onnx --port 9000
  python -m drml_jax.serve --workdir W --host 0.0.0.0    # other machines too

The page uses the browser's own camera, sends its frames to this server and
draws each face's box and id, a bar per AU against its threshold and the
last 30 seconds; Record and Download CSV keep what it showed. Programs POST
an image to /aus (Content-Type image/jpeg, png, webp or bmp) for one JSON
record, or open the WebSocket /frames and send frames as binary messages,
one JSON answer each, faces tracked across them. The server listens on
127.0.0.1 only unless --host says otherwise; a browser other than this
machine's needs https for its camera, or http://127.0.0.1 through an SSH
tunnel. docs/predict.md (Live) gives the JSON fields and limits.
"""

from __future__ import annotations

import argparse
import socket
import sys

from drml_jax import cli
from drml_jax.live import engines

DEFAULT_PORT = 8000
SHUTDOWN_S = 5.0  # Ctrl-C: seconds given to requests under way


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.serve", __doc__)
  engines.add_flags(parser)
  parser.add_argument(
    "--host",
    default="127.0.0.1",
    help="the address to listen on (default: %(default)s, this machine"
    " only; 0.0.0.0 for every interface)",
  )
  parser.add_argument(
    "--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)"
  )
  return parser.parse_args(argv)


def _check_free(host: str, port: int) -> None:
  """OSError in one line, before the model loads, when the address cannot
  be listened on (a port taken, a host that is not this machine's)."""
  try:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
      probe.bind((host, port))
  except OSError as error:
    raise OSError(
      f"cannot listen on {host} port {port} ({error.strerror or error}):"
      " pass another --host or --port, or stop what holds the port"
    ) from None


def run(args: argparse.Namespace) -> int:
  if not 0 <= args.port <= 65535:
    raise ValueError(f"--port {args.port}: give a port from 0 to 65535")
  _check_free(args.host, args.port)
  # Imported here: aiohttp, once the arguments are good.
  from aiohttp import web  # pylint: disable=import-outside-toplevel

  from drml_jax.live import server  # pylint: disable=import-outside-toplevel

  predictor, engine_line = engines.from_flags(args)
  host = f"[{args.host}]" if ":" in args.host else args.host
  print(f"{engine_line}", flush=True)
  web.run_app(
    server.application(predictor),
    host=args.host,
    port=args.port,
    print=lambda _: print(
      f"serving http://{host}:{args.port}/ (Ctrl-C stops)", flush=True
    ),
    access_log=None,
    shutdown_timeout=SHUTDOWN_S,
  )
  return 0


@cli.command
def main(argv: list[str]) -> int:
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
