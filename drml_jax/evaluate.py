"""Evaluates a DRML checkpoint on a dataset's test split: per-AU F1, accuracy and AUC.

  python -m drml_jax.evaluate --workdir workdirs/quick [--which best|latest]
  python -m drml_jax.evaluate --checkpoint CKPT_DIR_OR_MODEL.pth --dataset ck_plus \\
      --manual-dir /data/CK+

A work directory evaluates its best checkpoint on its own dataset unless told
otherwise; `--checkpoint` takes an orbax checkpoint directory (a training
run's `checkpoints/` or one written by drml_jax.convert) or a PyTorch
checkpoint of the reference model or a public port. Prints the per-AU table
and writes JSON. Every test example counts exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from data_pipeline import pipeline, registry
from drml_jax import cli
from drml_jax.reports import tables
from drml_jax.scoring import scores
from drml_jax.store import checkpoint, workdir
from drml_jax.train.evaluation import evaluate_model


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = cli.Parser(
    prog="python -m drml_jax.evaluate",
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=__doc__,
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", help="a drml_jax.train work directory")
  source.add_argument(
    "--checkpoint", help="orbax checkpoint directory or PyTorch .pth"
  )
  parser.add_argument(
    "--which",
    choices=("best", "latest"),
    default="best",
    help="which step of a training run (default: the best by mean F1 on "
    "the run's selection split, validation unless --selection test)",
  )
  parser.add_argument(
    "--step", type=int, default=None, help="an exact orbax step"
  )
  parser.add_argument(
    "--dataset",
    choices=registry.names(),
    help="default: the run's dataset (required with --checkpoint)",
  )
  parser.add_argument(
    "--fold", type=int, default=None, help="the dataset's fold"
  )
  parser.add_argument("--dataset-config", default=None, help="builder config")
  parser.add_argument("--data-dir", default=None, help="TFDS folder")
  parser.add_argument(
    "--manual-dir", default=None, help="the licensed dataset's folder"
  )
  parser.add_argument(
    "--mode",
    choices=pipeline.MODES,
    default=None,
    help="default: the run's, else resize",
  )
  parser.add_argument(
    "--normalization",
    choices=pipeline.NORMALIZATIONS,
    default=None,
    help="default: the run's, else rgb",
  )
  parser.add_argument("--batch-size", type=cli.positive_int, default=64)
  parser.add_argument(
    "--output",
    default=None,
    help="JSON file (default: <workdir>/eval_<dataset>.json or "
    "eval_<dataset>.json here)",
  )
  return parser.parse_args(argv)


@cli.command
def main(argv: list[str]) -> int:
  args = parse_args(argv)
  run = workdir.read_config(args.workdir) if args.workdir else {}
  trained_on = run.get("data", {})
  path = (
    os.path.join(args.workdir, workdir.CHECKPOINT_DIR)
    if args.workdir
    else args.checkpoint
  )
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"no checkpoint at {path}: pass an orbax checkpoint directory "
      "or a PyTorch .pth file"
    )
  dataset = args.dataset or trained_on.get("dataset")
  if dataset is None:
    raise ValueError(
      "--dataset is required with --checkpoint: one of "
      + ", ".join(registry.names())
    )
  output = args.output or os.path.join(
    args.workdir or ".", f"eval_{dataset}.json"
  )
  output_dir = os.path.dirname(os.path.abspath(output))
  if os.path.exists(output_dir) and not (
    os.path.isdir(output_dir) and os.access(output_dir, os.W_OK)
  ):
    raise PermissionError(
      f"{output_dir} is not a writable folder, so {os.path.basename(output)} cannot be "
      "written there: pass --output in a writable folder"
    )
  same_data = dataset == trained_on.get("dataset")
  pick = lambda value, key, default: (
    value
    if value is not None
    else (trained_on.get(key, default) if same_data else default)
  )
  fold = pick(args.fold, "fold", 0)
  registry.check(dataset, fold)
  mode = args.mode or trained_on.get("mode", "resize")
  normalization = args.normalization or trained_on.get("normalization", "rgb")
  data_dir = (
    args.data_dir
    if args.data_dir is not None
    else trained_on.get("data_dir", "")
  )
  model, model_config, description = checkpoint.load_model(
    path, step=args.step, best=args.which == "best"
  )
  builder = registry.build(
    dataset,
    fold=fold,
    dataset_config=pick(args.dataset_config, "dataset_config", ""),
    data_dir=data_dir,
    manual_dir=pick(args.manual_dir, "manual_dir", ""),
  )
  aus = registry.aus(builder)
  if len(aus) != model_config["num_aus"]:
    raise ValueError(
      f"the checkpoint predicts {model_config['num_aus']} AUs but {dataset} "
      f"labels {len(aus)} ({aus}): evaluate on a dataset with the model's AUs"
    )
  mean = None
  if normalization == "bgr_mean" and run and not same_data:
    # The network was trained on inputs minus its training set's mean image.
    mean = pipeline.mean_image(
      registry.build(
        trained_on["dataset"],
        fold=trained_on["fold"],
        dataset_config=trained_on["dataset_config"],
        data_dir=data_dir,
        manual_dir=trained_on["manual_dir"],
      )
    )
  num_examples = builder.info.splits["test"].num_examples
  print(
    f"evaluating {description} on {dataset} test ({num_examples} images, {mode}, "
    f"{normalization})"
  )
  start = time.time()
  evaluation = evaluate_model(
    model,
    builder=builder,
    batch_size=args.batch_size,
    mode=mode,
    normalization=normalization,
    mean=mean,
    input_size=model_config["input_size"],
  )
  result = scores.evaluation_scores(
    evaluation.counts,
    aus,
    auc=scores.roc_auc(evaluation.probabilities, evaluation.labels),
  )
  text = tables.evaluation_text(result)
  result.update(
    dataset=dataset,
    fold=fold,
    checkpoint=description,
    loss=evaluation.loss,
    num_examples=num_examples,
  )
  print(text)
  print(f"test loss {evaluation.loss:.4f}; {time.time() - start:.1f}s")
  workdir.write_atomic(output, scores.to_json(result))
  print(f"wrote {output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
