"""The one-line form of an error, as every message to a user quotes it.

It lives in the lowest layer (data_pipeline imports nothing of drml_jax), so
every package and command shares these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable


def first_line(error: BaseException, limit: int | None = None) -> str:
  """The first line of an error's message (cut to `limit` characters when
  given, for a library's long messages), or its type when it has none."""
  text = str(error).strip()
  return text.splitlines()[0][:limit] if text else type(error).__name__


def check_name(kind: str, name, valid: Iterable) -> None:
  """Raises a one-line ValueError unless `name` is one of `valid`."""
  valid = list(valid)
  if name not in valid:
    raise ValueError(
      f"unknown {kind} {name!r}; valid: "
      + (", ".join(map(str, valid)) or "none")
    )
