"""Self-contained HTML pages: autoescaped jinja2 templates, images inline.

  text = html.render("run.html", title="DRML on disfa", ...)
  html.png_uri(rgb)          # an (H, W, 3) uint8 image or PNG bytes, inline
  html.write("report.html", text)

The templates are package data in drml_jax/rendering/templates/; every page
extends base.html, which holds the style sheet. Every value is escaped (a
file name may hold `<`), and a page loads nothing: no external file, font
or script, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import functools
import io

import jinja2
import numpy as np
from PIL import Image

from data_pipeline import errors
from drml_jax.store.workdir import write_atomic


@functools.cache
def _environment() -> jinja2.Environment:
  return jinja2.Environment(
    loader=jinja2.PackageLoader("drml_jax.rendering", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
  )


def render(template: str, **context) -> str:
  """The page of `template` (a file of drml_jax/rendering/templates/)."""
  return _environment().get_template(template).render(**context)


def png_uri(image: np.ndarray | bytes) -> str:
  """A data URI of PNG bytes, or of an (H, W, 3) uint8 RGB image."""
  if isinstance(image, np.ndarray):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    image = buffer.getvalue()
  return "data:image/png;base64," + base64.b64encode(image).decode("ascii")


def write(path: str, text: str) -> None:
  """Writes a page atomically; an output that cannot be written is one
  line naming it (OSError)."""
  try:
    write_atomic(path, text)
  except OSError as error:
    reason = error.strerror or errors.first_line(error)
    if error.filename and not str(error.filename).endswith(".partial"):
      reason += f": {error.filename}"
    raise OSError(
      f"cannot write {path} ({reason}): pass another path"
    ) from None
