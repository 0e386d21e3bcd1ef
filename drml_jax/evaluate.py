"""Evaluates a DRML checkpoint on a dataset's test split: per-AU F1 and accuracy.

  python -m drml_jax.evaluate --workdir workdirs/default [--which best|latest]
  python -m drml_jax.evaluate --checkpoint CKPT_DIR_OR_MODEL.pth --dataset ck_plus \\
      --manual-dir /data/CK+

A work directory evaluates its best checkpoint on its own dataset unless told
otherwise; `--checkpoint` takes an orbax checkpoint directory (a training
run's `checkpoints/` or one written by drml_jax.convert) or a PyTorch
checkpoint of the reference model. Prints the per-AU table and writes JSON.
Every test example counts exactly once (the last batch's padding is masked).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from drml_jax import checkpoint, data, parallel, report
from drml_jax.model import feature_shape
from drml_jax.scores import to_json
from drml_jax.steps import SplitModel, make_eval_step

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def evaluate_split(eval_step, params, rest, batches, mesh) -> tuple[np.ndarray, float]:
  """Summed (C, 4) confusion counts and summed loss over every batch."""
  counts, loss = None, jnp.zeros(())
  for batch in batches:
    batch = parallel.shard_batch(batch, mesh)
    batch_counts, batch_loss = eval_step(params, rest, batch["image"], batch["labels"],
                                         batch["valid"])
    counts = batch_counts if counts is None else counts + batch_counts
    loss = loss + batch_loss
  counts, loss = parallel.fetch((counts, loss))
  return counts, float(loss)


def read_run_config(workdir: str) -> dict:
  """The resolved config a training run saved in its work directory."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a training work directory (no {CONFIG_FILE}); "
                            "pass the folder given to drml_jax.train --workdir")
  with open(path) as f:
    return json.load(f)


def _first_line(error: Exception) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def torch_input_size(fc1_inputs: int, grid) -> int:
  """The input side a PyTorch DRML was built for, from its first fc's width.

  170 when it fits, else the smallest side whose conv1 map the grid divides.
  """
  sides = [side for side in range(11, 1025)
           if feature_shape(side)[0] > 0 and math.prod(feature_shape(side)) == fc1_inputs
           and (side - 10) % grid[0] == 0 and (side - 10) % grid[1] == 0]
  if not sides:
    raise ValueError(f"classifier.0 takes {fc1_inputs} inputs, which no DRML input size gives")
  return 170 if 170 in sides else sides[0]


def load_checkpoint(path: str, *, which: str = "best", step: int | None = None):
  """(model, model_config, description) from an orbax directory or a PyTorch file."""
  if os.path.isfile(path):
    from drml_jax import interchange  # pylint: disable=import-outside-toplevel
    from reference_torch import checkpoint as torch_checkpoint  # pylint: disable=import-outside-toplevel
    try:
      state_dict = torch_checkpoint.load_state_dict(path)
    except Exception as error:  # pylint: disable=broad-except
      raise ValueError(f"{path} is not a readable PyTorch checkpoint "
                       f"({_first_line(error)})") from None
    model_config = dict(torch_checkpoint.infer_model_config(state_dict))
    model_config["num_aus"] = int(model_config["num_aus"])
    model_config["grid"] = list(model_config["grid"])
    model_config["input_size"] = torch_input_size(
        state_dict["classifier.0.weight"].shape[1], model_config["grid"])
    model = checkpoint.build_model(model_config)
    interchange.load_torch_state_dict(model, state_dict)
    return model, model_config, f"PyTorch checkpoint {path}"
  if step is None and which == "best":
    runs = checkpoint.TrainCheckpoints(path, read_only=True)
    step = runs.best_step()
    runs.close()
    if step is None:
      which = "latest"  # no evaluated step yet (or not a training run)
  try:
    model, model_config = checkpoint.restore_model(path, step=step)
  except Exception as error:  # pylint: disable=broad-except
    raise ValueError(f"{path} is not a readable orbax DRML checkpoint "
                     f"({_first_line(error)})") from None
  name = f"step {step}" if step is not None else which
  return model, model_config, f"orbax checkpoint {path} ({name})"


def evaluate(model, *, builder, batch_size: int, mode: str, normalization: str,
             input_size: int = 170, mean: np.ndarray | None = None,
             split: str = "test") -> tuple[np.ndarray, float]:
  """Counts and mean loss of `model` on a split, over all local devices."""
  mesh = parallel.make_mesh()
  parallel.check_batch_size(batch_size, "--batch-size")
  split_model = SplitModel.of(model)
  params, rest = parallel.replicate((split_model.params, split_model.rest), mesh)
  batches = data.Batches(builder, data_shards=1, process_index=0, process_count=1,
                         mode=mode, normalization=normalization, mean=mean,
                         input_size=input_size)
  counts, loss = evaluate_split(make_eval_step(split_model.eval_graphdef), params, rest,
                                batches.evaluation(split, batch_size), mesh)
  return counts, loss / builder.info.splits[split].num_examples


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m drml_jax.evaluate", description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", help="a drml_jax.train work directory")
  source.add_argument("--checkpoint", help="orbax checkpoint directory or PyTorch .pth")
  parser.add_argument("--which", choices=("best", "latest"), default="best",
                      help="which step of a training run (default: best by mean F1)")
  parser.add_argument("--step", type=int, default=None, help="an exact orbax step")
  parser.add_argument("--dataset", choices=data.EVAL_DATASETS,
                      help="default: the run's dataset (required with --checkpoint)")
  parser.add_argument("--fold", type=int, default=None, help="bp4d / disfa fold (1..3)")
  parser.add_argument("--dataset-config", default=None, help="builder config")
  parser.add_argument("--data-dir", default=None, help="TFDS folder")
  parser.add_argument("--manual-dir", default=None, help="the licensed dataset's folder")
  parser.add_argument("--mode", choices=("resize", "crop"), default=None,
                      help="default: the run's, else resize")
  parser.add_argument("--normalization", choices=("rgb", "bgr_mean"), default=None,
                      help="default: the run's, else rgb")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--output", default=None,
                      help="JSON file (default: <workdir>/eval_<dataset>.json or "
                           "eval_<dataset>.json here)")
  args = parser.parse_args(argv)
  try:
    return _run(args)
  except (ValueError, FileNotFoundError) as error:
    print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 2


def _run(args) -> int:
  run = read_run_config(args.workdir) if args.workdir else {}
  path = os.path.join(args.workdir, CHECKPOINT_DIR) if args.workdir else args.checkpoint
  if not os.path.exists(path):
    raise FileNotFoundError(f"no checkpoint at {path}: pass an orbax checkpoint directory "
                            "or a PyTorch .pth file")
  dataset = args.dataset or run.get("dataset")
  if dataset is None:
    raise ValueError("--dataset is required with --checkpoint: one of "
                     + ", ".join(data.EVAL_DATASETS))
  same_data = dataset == run.get("dataset")
  fold = args.fold if args.fold is not None else (run.get("fold", 0) if same_data else 0)
  if dataset in ("bp4d", "disfa") and fold not in (1, 2, 3):
    raise ValueError(f"--dataset {dataset} needs --fold 1, 2 or 3")
  mode = args.mode or run.get("mode", "resize")
  normalization = args.normalization or run.get("normalization", "rgb")
  data_dir = args.data_dir if args.data_dir is not None else run.get("data_dir", "")
  manual_dir = args.manual_dir if args.manual_dir is not None else (
      run.get("manual_dir", "") if same_data else "")
  dataset_config = args.dataset_config if args.dataset_config is not None else (
      run.get("dataset_config", "") if same_data else "")
  model, model_config, description = load_checkpoint(
      path, which="latest" if args.step is None and args.which == "latest" else "best",
      step=args.step)
  builder = data.build(dataset, fold=fold, dataset_config=dataset_config,
                       data_dir=data_dir, manual_dir=manual_dir)
  aus = data.aus(builder)
  if len(aus) != model_config["num_aus"]:
    raise ValueError(f"the checkpoint predicts {model_config['num_aus']} AUs but {dataset} "
                     f"labels {len(aus)} ({aus}): evaluate on a dataset with the model's AUs")
  mean = None
  if normalization == "bgr_mean" and run and not same_data:
    # The network was trained on inputs minus its training set's mean image.
    from data_pipeline import pipeline  # pylint: disable=import-outside-toplevel
    mean = pipeline.mean_image(data.build(
        run["dataset"], fold=run.get("fold", 0), dataset_config=run.get("dataset_config", ""),
        data_dir=data_dir, manual_dir=run.get("manual_dir", "")))
  print(f"evaluating {description} on {dataset} test "
        f"({builder.info.splits['test'].num_examples} images, {mode}, {normalization})")
  start = time.time()
  counts, loss = evaluate(model, builder=builder, batch_size=args.batch_size, mode=mode,
                          normalization=normalization, mean=mean,
                          input_size=model_config.get("input_size", 170))
  scores, text = report.evaluation_report(counts, aus)
  scores.update(dataset=dataset, fold=fold, checkpoint=description, loss=loss,
                num_examples=builder.info.splits["test"].num_examples)
  print(text)
  print(f"test loss {loss:.4f}; {time.time() - start:.1f}s")
  output = args.output or os.path.join(args.workdir or ".", f"eval_{dataset}.json")
  report.write_atomic(output, to_json(scores))
  print(f"wrote {output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
