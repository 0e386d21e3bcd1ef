"""PyTorch rows: the public port's form, reference_torch's own, the fast forms.

- "ports' form": YIUYA/DRML's code as `reference_torch.port` mirrors it
  (`torch.split` + `.contiguous()` per region, its clamped loss, torch SGD).
- "reference_torch form": `reference_torch.model`, whose region layer slices
  views (the same values; a slower backward).
- "grouped conv": `reference_torch.fast` (one grouped conv for the region
  layer), also with channels_last and with torch.compile.

Compile time is the first step's (torch.compile included). bfloat16 rows
run under torch.autocast.
"""

from __future__ import annotations

import contextlib
import time

import jax
import numpy as np

from drml_jax.benchmark.timing import (
  LEARNING_RATE,
  MOMENTUM,
  WEIGHT_DECAY,
  Row,
  failure,
  fill_rate,
  timed_steps,
)

# (label, form, channels_last, torch.compile)
FORMS = (
  ("ports' form, YIUYA/DRML (split + contiguous)", "ports", False, False),
  ("reference_torch form (sliced views)", "reference", False, False),
  ("grouped conv (reference_torch.fast)", "grouped", False, False),
  ("grouped conv, channels_last", "grouped", True, False),
  ("grouped conv, torch.compile", "grouped", False, True),
)
PORT_CODE = (
  "YIUYA/DRML model/DRML.py (region layer), utils.py (loss), train.py (SGD)"
)


def _torch_device(torch):
  """Torch's device matching JAX's backend, or None where torch cannot use it."""
  backend = jax.default_backend()
  if backend == "cpu":
    return torch.device("cpu")
  if backend == "gpu" and torch.cuda.is_available():
    return torch.device("cuda")
  return None


def _torch_sync(torch, device):
  if device.type == "cuda":
    torch.cuda.synchronize()


def torch_rows(
  args,
  kind: str,
  forms: tuple[str, ...] | None = None,
  compiled_only: bool = False,
) -> list[Row]:
  """Every PyTorch form of `kind` train|eval (or those of `forms`; with
  `compiled_only`, their torch.compile rows alone), in each of
  `args.dtypes` (bfloat16 as torch.autocast)."""
  rows = []
  with torch_threads(args.torch_threads):
    for dtype in args.dtypes:
      for label, form, channels_last, compiled in FORMS:
        if forms is not None and form not in forms:
          continue
        if compiled_only and not compiled:
          continue
        row = Row(
          f"PyTorch {kind} {dtype} {label}",
          "torch",
          kind,
          dtype,
          {"form": form, "channels_last": channels_last, "compile": compiled},
        )
        if form == "ports":
          row.options["mirrors"] = PORT_CODE
        if compiled and not args.torch_compile:
          row.status, row.reason = (
            "skipped",
            "torch.compile off (--no-torch-compile or --smoke)",
          )
        else:
          row = _torch_measure(args, row)
        rows.append(row)
  return rows


@contextlib.contextmanager
def torch_threads(threads: int | None):
  """Runs with `threads` intra-op threads (None: torch's default), then restores."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    yield
    return
  previous = torch.get_num_threads()
  torch.set_num_threads(threads or previous)
  try:
    yield
  finally:
    torch.set_num_threads(previous)


def _torch_measure(args, row: Row) -> Row:
  try:
    import torch  # pylint: disable=import-outside-toplevel

    from reference_torch.fast import FastDRML  # pylint: disable=import-outside-toplevel
    from reference_torch.losses import multilabel_sigmoid_cross_entropy  # pylint: disable=import-outside-toplevel
    from reference_torch.model import DRML as TorchDRML  # pylint: disable=import-outside-toplevel
    from reference_torch.port import port_drml, port_loss  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    return failure(row, error, "unavailable")
  device = _torch_device(torch)
  if device is None:
    row.status, row.reason = (
      "unavailable",
      f"torch cannot use the {jax.default_backend()} backend",
    )
    return row
  row.options["threads"] = torch.get_num_threads()
  torch.manual_seed(args.seed)
  reference = TorchDRML(
    args.num_aus, grid=args.grid, input_size=args.input_size
  )
  make_model, loss_fn = {
    "ports": (port_drml, port_loss),
    "reference": (lambda model: model, multilabel_sigmoid_cross_entropy),
    "grouped": (FastDRML, multilabel_sigmoid_cross_entropy),
  }[row.options["form"]]
  model = make_model(reference).to(device)
  rng = np.random.default_rng(0)
  images = torch.from_numpy(
    rng.random((args.batch, 3, args.input_size, args.input_size), np.float32)
  ).to(device)
  labels = torch.from_numpy(
    rng.choice([-1.0, 1.0], (args.batch, args.num_aus)).astype(np.float32)
  ).to(device)
  if row.options["channels_last"]:
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  autocast = torch.autocast(
    device.type, torch.bfloat16, enabled=row.dtype == "bfloat16"
  )
  if row.kind == "train":
    model.train()
    optimizer = torch.optim.SGD(
      model.parameters(),
      lr=LEARNING_RATE,
      momentum=MOMENTUM,
      weight_decay=WEIGHT_DECAY,
    )

    def step():
      optimizer.zero_grad(set_to_none=True)
      with autocast:
        loss = loss_fn(model(images).float(), labels)
      loss.backward()
      optimizer.step()
  else:
    model.eval()

    @torch.no_grad()
    def step():
      with autocast:
        return model(images)

  if row.options["compile"]:
    step = torch.compile(step)

  def run():
    step()
    _torch_sync(torch, device)

  try:
    start = time.perf_counter()
    run()
    row.compile_s = (
      time.perf_counter() - start
    )  # the first step, compilation included
    return fill_rate(
      row, timed_steps(run, max(args.warmup - 1, 0), args.steps), args.batch
    )
  except Exception as error:  # pylint: disable=broad-except
    return failure(row, error)  # e.g. torch.compile without a working toolchain


def logits_error_vs_float32(args) -> float:
  """Max |bfloat16 autocast logits - float32 logits| / max |float32 logits|
  of the reference model on one random batch (eval mode)."""
  import torch  # pylint: disable=import-outside-toplevel

  from reference_torch.model import DRML as TorchDRML  # pylint: disable=import-outside-toplevel

  torch.manual_seed(args.seed)
  model = TorchDRML(
    args.num_aus, grid=args.grid, input_size=args.input_size
  ).eval()
  rng = np.random.default_rng(0)
  images = torch.from_numpy(
    rng.random((args.batch, 3, args.input_size, args.input_size), np.float32)
  )
  with torch.no_grad():
    exact = model(images)
    with torch.autocast("cpu", torch.bfloat16):
      low = model(images).float()
  return float((low - exact).abs().max() / exact.abs().max())
