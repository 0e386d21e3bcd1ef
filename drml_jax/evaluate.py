"""Evaluates a DRML checkpoint on a dataset's test split: per-AU F1, accuracy
and AUC, and with the intensity head ICC(3,1), Pearson r and MAE where the
dataset codes intensity.

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

from data_pipeline import model_inputs, registry
from drml_jax import cli
from drml_jax.predict.predictor import require_intensity
from drml_jax.rendering import tables
from drml_jax.scoring import scores
from drml_jax.store import saved_run, workdir
from drml_jax.train.evaluation import evaluate_model, scored_intensity


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.evaluate", __doc__)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", help="a drml_jax.train work directory")
  source.add_argument(
    "--checkpoint", help="orbax checkpoint directory or PyTorch .pth"
  )
  parser.add_argument(
    "--which",
    choices=saved_run.WHICH,
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
    choices=model_inputs.MODES,
    default=None,
    help="default: the run's, else resize",
  )
  parser.add_argument(
    "--normalization",
    choices=model_inputs.NORMALIZATIONS,
    default=None,
    help="default: the run's, else rgb",
  )
  cli.add_intensity_flag(parser)
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
  trained_on = (
    saved_run.read_config(args.workdir).data if args.workdir else None
  )
  saved_run.checkpoint_path(args.workdir, args.checkpoint)
  dataset = args.dataset or (trained_on.dataset if trained_on else None)
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
  same_data = trained_on is not None and dataset == trained_on.dataset
  pick = lambda value, key, default: (
    value if value is not None else (trained_on[key] if same_data else default)
  )
  fold = pick(args.fold, "fold", 0)
  registry.check(dataset, fold)
  trained = saved_run.load(
    workdir=args.workdir,
    checkpoint=args.checkpoint,
    which=args.which,
    step=args.step,
  )
  if args.intensity:
    require_intensity(trained.model.has_intensity, trained.description)
  inputs = trained.inputs
  builder = registry.build(
    dataset,
    fold=fold,
    dataset_config=pick(args.dataset_config, "dataset_config", ""),
    data_dir=args.data_dir
    if args.data_dir is not None
    else (trained_on.data_dir if trained_on else ""),
    manual_dir=pick(args.manual_dir, "manual_dir", ""),
  )
  aus = registry.aus(builder)
  if len(aus) != len(inputs.aus):
    raise ValueError(
      f"the checkpoint predicts {len(inputs.aus)} AUs but {dataset} "
      f"labels {len(aus)} ({aus}): evaluate on a dataset with the model's AUs"
    )
  mode = args.mode or inputs.mode
  normalization = args.normalization or inputs.normalization
  num_examples = builder.info.splits["test"].num_examples
  print(
    f"evaluating {trained.description} on {dataset} test ({num_examples} "
    f"images, {mode}, {normalization})"
  )
  start = time.time()
  evaluation = evaluate_model(
    trained.model,
    builder=builder,
    batch_size=args.batch_size,
    mode=mode,
    normalization=normalization,
    # The training split's mean image, stored with the checkpoint; without
    # one, the evaluated dataset's own (Batches computes it).
    mean=inputs.mean if normalization == "bgr_mean" else None,
    input_size=inputs.input_size,
  )
  result = scores.evaluation_scores(
    evaluation.counts,
    aus,
    auc=scores.roc_auc(evaluation.probabilities, evaluation.labels),
    intensity=scored_intensity(evaluation, aus),
  )
  text = tables.evaluation_text(result)
  if not trained.model.has_intensity:
    text += (
      f"\nintensity not scored: {trained.description} has no intensity "
      "head (train with --intensity)"
    )
  elif "icc" not in result:
    text += f"\nintensity not scored: {dataset} test codes no intensity"
  result.update(
    dataset=dataset,
    fold=fold,
    checkpoint=trained.description,
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
