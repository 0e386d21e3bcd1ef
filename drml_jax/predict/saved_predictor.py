"""The predictor of a work directory or checkpoint, kept exported between runs.

  predictor = load_predictor(workdir="workdirs/quick")

The first run reads the checkpoint (orbax and Flax, or PyTorch for a .pth),
exports its forward pass (`export.predictor_of`) and saves it in the cache
(`drml_jax.runtime.cache`, folder predictors/): the serialized program, its
weights as .npy files, and what the CSV needs (AUs, thresholds, inputs).
Later runs read that back, with neither Flax, orbax nor torch imported: a
second or more of start-up saved, the rest being the compiled program that
JAX's own cache holds.

An entry's key hashes the checkpoint's files (paths, sizes, modification
times), the run's config.json, the options that choose the model (`aus`),
every source file of the project's packages (`SOURCE_PACKAGES`: the model,
the preprocessing, the export, the evidence program, the checkpoint
readers, and whatever they come to import) and the versions of the
libraries that trace, read or run it (`LIBRARIES`): a changed checkpoint,
code or library makes a new entry, never a stale prediction, with no list
of files to keep up to date. The MAX_ENTRIES most recently used are kept
(each holds the model's weights, ~230 MB for the full DRML).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import threading

import jax
import numpy as np

from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE, Predictor
from drml_jax.runtime import cache

MAX_ENTRIES = 3
PROGRAM = "forward.bin"
EVIDENCE = "evidence.bin"  # the saliency program, once a run has asked for it
FIELDS_FILE = "predictor.json"
# The packages whose source is hashed into every entry's key: all of it, so
# that no change to what a predictor computes is left out of the key.
_ROOT = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
SOURCE_PACKAGES = tuple(
  os.path.join(_ROOT, name)
  for name in ("drml_jax", "data_pipeline", "reference_torch")
)
# The distributions that export the program (jax, flax), read the
# checkpoint (orbax, torch for a .pth) or run it (jaxlib, numpy).
LIBRARIES = ("jax", "jaxlib", "flax", "orbax-checkpoint", "torch", "numpy")


def _files(folder: str):
  """Every file under `folder`, in a fixed order, as (full, relative) paths."""
  for root, dirs, names in os.walk(folder):
    dirs.sort()
    for name in sorted(names):
      full = os.path.join(root, name)
      yield full, os.path.relpath(full, folder)


def _signature(path: str) -> list:
  """(relative path, size, mtime) of every file under `path`, or of `path`."""
  if not os.path.isdir(path):
    stat = os.stat(path)
    return [[os.path.basename(path), stat.st_size, stat.st_mtime_ns]]
  files = []
  for full, relative in _files(path):
    stat = os.stat(full)
    files.append([relative, stat.st_size, stat.st_mtime_ns])
  return files


def entry_key(
  workdir: str | None, checkpoint: str | None, aus: tuple[int, ...] | None
) -> str:
  """The cache key of the predictor these arguments load."""
  digest = hashlib.sha256()
  if workdir is not None:
    sources = [
      os.path.join(workdir, "checkpoints"),
      os.path.join(workdir, "config.json"),
    ]
  else:
    sources = [checkpoint]
  for source in sources:
    if os.path.exists(source):
      digest.update(os.path.realpath(source).encode())
      digest.update(json.dumps(_signature(source)).encode())
  digest.update(repr(aus).encode())
  digest.update(code_digest())
  return digest.hexdigest()[:32]


def code_digest() -> bytes:
  """sha256 of every .py file under SOURCE_PACKAGES (path and contents) and
  of LIBRARIES' installed versions."""
  digest = hashlib.sha256()
  for package in SOURCE_PACKAGES:
    for full, relative in _files(package):
      if relative.endswith(".py"):
        digest.update(relative.encode() + b"\0")
        with open(full, "rb") as f:
          digest.update(f.read())
  for library in LIBRARIES:
    try:
      version = importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
      version = "absent"
    digest.update(f"{library}=={version}\n".encode())
  return digest.digest()


def save(predictor: Predictor, folder: str) -> None:
  """Writes `predictor` to `folder` (atomically: a temporary folder renamed)."""
  parent = os.path.dirname(folder)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(dir=parent, prefix=".partial-")
  try:
    with open(os.path.join(staging, PROGRAM), "wb") as f:
      f.write(predictor.exported.serialize())
    if predictor.explainer is not None:
      with open(os.path.join(staging, EVIDENCE), "wb") as f:
        f.write(predictor.explainer.serialize())
    for index, weight in enumerate(predictor.weights):
      np.save(os.path.join(staging, f"{index}.npy"), np.asarray(weight))
    fields = {
      "aus": list(predictor.aus),
      "thresholds": predictor.thresholds.tolist(),
      "mode": predictor.mode,
      "normalization": predictor.normalization,
      "input_size": predictor.input_size,
      "description": predictor.description,
      "weights": len(predictor.weights),
    }
    with open(os.path.join(staging, FIELDS_FILE), "w") as f:
      json.dump(fields, f)
    if os.path.isdir(folder):  # an entry without the saliency program
      shutil.rmtree(folder)
    os.replace(staging, folder)
  except OSError:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _program(path: str) -> jax.export.Exported:
  with open(path, "rb") as f:
    return jax.export.deserialize(bytearray(f.read()))


def read(
  folder: str, batch_size: int = DEFAULT_BATCH_SIZE, explains: bool = False
) -> Predictor:
  """The predictor `save` wrote to `folder` (with `explains`, its saliency
  program too: FileNotFoundError if the entry has none)."""
  with open(os.path.join(folder, FIELDS_FILE)) as f:
    fields = json.load(f)
  exported = _program(os.path.join(folder, PROGRAM))
  explainer = _program(os.path.join(folder, EVIDENCE)) if explains else None
  # Mapped, not read: the weights come from the page cache as they are used,
  # with no copy of their 230 MB made first.
  weights = [
    np.load(os.path.join(folder, f"{index}.npy"), mmap_mode="r")
    for index in range(fields.pop("weights"))
  ]
  return Predictor(
    exported,
    weights,
    tuple(fields.pop("aus")),
    np.asarray(fields.pop("thresholds")),
    batch_size=batch_size,
    explainer=explainer,
    **fields,
  )


def _load_checkpoint(
  workdir: str | None,
  checkpoint: str | None,
  aus,
  batch_size: int,
  explains: bool = False,
) -> Predictor:
  """The predictor exported from the checkpoint itself."""
  # Imported here: Flax, orbax (and torch for a .pth) cost seconds of
  # start-up that a saved predictor does without.
  from drml_jax.predict.programs import predictor_of  # pylint: disable=import-outside-toplevel
  from drml_jax.store import saved_run  # pylint: disable=import-outside-toplevel

  trained = saved_run.load(workdir=workdir, checkpoint=checkpoint, aus=aus)
  inputs = trained.inputs
  return predictor_of(
    trained.model,
    saved_run.named_aus(trained),
    thresholds=trained.thresholds,
    mode=inputs.mode,
    normalization=inputs.normalization,
    mean=inputs.mean,
    input_size=inputs.input_size,
    batch_size=batch_size,
    description=trained.description,
    explains=explains,
  )


def load_predictor(
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  aus: tuple[int, ...] | None = None,
  batch_size: int = DEFAULT_BATCH_SIZE,
  explains: bool = False,
) -> Predictor:
  """The predictor of a training work directory (its best checkpoint) or of
  a checkpoint (`drml_jax.store.saved_run.load`): the preprocessing, AUs and
  thresholds stored with it; a PyTorch file is read with the protocol's
  preprocessing (resize, RGB / 255) and its AUs are `aus`, else DISFA+'s
  (12) or DISFA's (8). Read from the cache when it holds it, else saved
  there. With `explains`, it computes evidence maps too
  (`Predictor.evidence`). Raises ValueError / FileNotFoundError in one line.
  """
  entries = cache.folder("predictors")
  source = workdir if workdir is not None else checkpoint
  if entries is None or source is None or not os.path.exists(source):
    return _load_checkpoint(workdir, checkpoint, aus, batch_size, explains)
  folder = os.path.join(entries, entry_key(workdir, checkpoint, aus))
  if os.path.isfile(os.path.join(folder, FIELDS_FILE)):
    try:
      predictor = read(folder, batch_size, explains)
      os.utime(folder)  # most recently used
      return predictor
    except FileNotFoundError:
      pass  # no saliency program yet: the entry is made again with it
    except Exception:  # pylint: disable=broad-except
      # A damaged entry (the deserializer raises what its bytes lead to):
      # made again below.
      shutil.rmtree(folder, ignore_errors=True)
  predictor = _load_checkpoint(workdir, checkpoint, aus, batch_size, explains)
  # Saved while this run compiles and predicts; the process waits for it
  # at exit (not a daemon).
  global _saving  # pylint: disable=global-statement
  _saving = threading.Thread(target=_keep, args=(predictor, folder, entries))
  _saving.start()
  return predictor


_saving: threading.Thread | None = None


def wait_saved() -> None:
  """Returns once the predictor being saved, if any, is in the cache."""
  if _saving is not None:
    _saving.join()


def _keep(predictor: Predictor, folder: str, entries: str) -> None:
  try:
    save(predictor, folder)
    cache.keep_newest(entries, MAX_ENTRIES)
  except OSError:
    pass  # a read-only or full cache: this run predicts all the same
