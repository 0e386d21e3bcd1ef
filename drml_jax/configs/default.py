"""The base config: every field a run has, what it means and its choices.

`get_config()` returns every field, set to the reproduction report's DISFA+
protocol (seed.py says what that is); the presets and a user's
`--config my_config.py` start from it and change what differs. `FIELDS`
gives each field's one-line meaning and, where the field takes one of a
fixed set of names, those names: plain data, read by `--help` and by the
checks in configs/__init__.py. The modules that own a set of names
(drml_jax.model.network.INIT_VARIANTS, ...) are checked to agree with it in
tests/test_configs.py. Each field is set from the command line as
`--field value` (`--no-field` for booleans) by its own name, or by its
dotted path (`--model.dropout 0.5`).
"""

import ml_collections

# Fields (or whole groups) a resumed run may change: they say how fast,
# where from or how long, never what a step computes.
RESUMABLE = (
  "kernels",
  "hosts",
  "data.data_dir",
  "data.manual_dir",
  "data.cache",
  "num_epochs",
  "eval_batch_size",
  "log_every_steps",
  "checkpoint_every_steps",
  "workdir",
  "export_torch",
  "progress",
)

# Dotted path -> (one-line meaning, its choices or None), in get_config's
# order. The dataset's choices are data_pipeline.registry's trainable names
# (configs.CHOICES): a new dataset stays one registry entry.
FIELDS = {
  "data.dataset": (
    "the dataset trained on: a trainable name of data_pipeline.registry",
    None,
  ),
  "data.fold": (
    "the fold of a dataset with folds (bp4d, disfa: 1..3; else 0); "
    "all: each fold in <workdir>/fold<k>, then folds.md",
    None,
  ),
  "data.dataset_config": (
    "the TFDS builder config; empty: the builder's default",
    None,
  ),
  "data.data_dir": (
    "the TFDS folder; empty: $DRML_DATA_DIR or ~/.cache/drml",
    None,
  ),
  "data.manual_dir": (
    "a licensed dataset's own folder, read to build its TFDS copy",
    None,
  ),
  "data.mode": (
    "resize (the whole face) or crop (random crop + mirror when training, "
    "center crop at test)",
    ("resize", "crop"),
  ),
  "data.normalization": (
    "rgb (RGB / 255) or bgr_mean (BGR 0..255 minus the mean image)",
    ("rgb", "bgr_mean"),
  ),
  "data.cache": (
    "keep the decoded images in memory after the first epoch",
    None,
  ),
  "data.data_shards": (
    "parts the data is read in; 0: one per process",
    None,
  ),
  "data.val_subjects": (
    "training subjects held out for --selection val (comma list); "
    "empty: the last 15% of them",
    None,
  ),
  "model.input_size": (
    "the side of the square face fed to the network (at least 66)",
    None,
  ),
  "model.grid": (
    "rows,cols of the region layer's grid; they divide the conv1 map "
    "(input_size - 10)",
    None,
  ),
  "model.region_layer": (
    "use the region layer; --no-region-layer is the paper's ablation",
    None,
  ),
  "model.intensity": (
    "add the intensity head: each AU's intensity 0-5 beside its occurrence, "
    "trained where the dataset codes it",
    None,
  ),
  "model.region_bn": (
    "region BatchNorm: affine (running statistics, as the PyTorch ports) "
    "or batch_stats (no affine, batch statistics always, as Caffe)",
    ("affine", "batch_stats"),
  ),
  "model.init": (
    "parameter init: pytorch (torch's defaults), caffe (the paper's "
    "gaussians), he (kaiming normal)",
    ("pytorch", "caffe", "he"),
  ),
  "model.dropout": (
    "dropout rate of the fc layers, in [0, 1)",
    None,
  ),
  "kernels.conv": (
    "form of the dense convs (same numbers, speed only); auto: banded and "
    "FFT on CPU, lax on accelerators",
    ("auto", "lax", "chunked", "fft", "banded"),
  ),
  "kernels.region_conv": (
    "form of the region layer's 3x3 convs (same numbers, speed only)",
    ("auto", "lax", "unrolled"),
  ),
  "kernels.region_layout": (
    "layout of the map from conv1 to the max-pool (same numbers, speed only)",
    ("auto", "image", "patches"),
  ),
  "loss.pos_weight": (
    "weigh each AU's positives in the training loss: none, or train_rates "
    "(its negatives / positives in the training split)",
    ("none", "train_rates"),
  ),
  "loss.intensity_weight": (
    "the weight of the intensity head's loss (with --intensity): how fast the head learns",
    None,
  ),
  "optim.learning_rate": ("SGD's learning rate", None),
  "optim.momentum": ("SGD's momentum, in [0, 1)", None),
  "optim.weight_decay": (
    "L2 weight decay, added to the gradient as torch.optim.SGD does",
    None,
  ),
  "optim.schedule": (
    "learning rate: constant, or step (times gamma every step_size steps)",
    ("constant", "step"),
  ),
  "optim.step_size": ("steps between drops of the rate (schedule step)", None),
  "optim.gamma": ("the factor of each drop (schedule step), in (0, 1]", None),
  "optim.caffe_bias_rule": (
    "biases at twice the learning rate and without weight decay (Caffe)",
    None,
  ),
  "selection": (
    "which epoch is best: val (mean F1 of held-out training subjects) or "
    "test (the test split's: the seed's practice)",
    ("val", "test"),
  ),
  "batch_size": ("training batch, over all devices and hosts", None),
  "eval_batch_size": ("evaluation batch (same counts at any size)", None),
  "num_epochs": ("epochs to train", None),
  "seed": ("the seed of the init, dropout, shuffles and crops", None),
  "log_every_steps": ("steps between logged training losses", None),
  "checkpoint_every_steps": (
    "steps between checkpoints; 0: at the end of each epoch only",
    None,
  ),
  "workdir": (
    "the run's folder: checkpoints, metrics, reports; rerun to resume",
    None,
  ),
  "export_torch": (
    "write a PyTorch state_dict to this path at the end; empty: none",
    None,
  ),
  "progress": ("show the progress bar", None),
  "hosts.distributed": (
    "start jax.distributed (also on with a coordinator_address or "
    "$JAX_COORDINATOR_ADDRESS)",
    None,
  ),
  "hosts.coordinator_address": ("host:port of process 0", None),
  "hosts.num_processes": (
    "processes in the run; 0: from the cluster environment",
    None,
  ),
  "hosts.process_id": (
    "this process's index; -1: from the cluster environment",
    None,
  ),
}


def get_config():
  config = ml_collections.ConfigDict()

  # What is read, and how it becomes a batch (data_pipeline).
  config.data = ml_collections.ConfigDict()
  config.data.dataset = "disfa_plus"
  config.data.fold = 0  # --fold all is stored as -1
  config.data.dataset_config = ""
  config.data.data_dir = ""
  config.data.manual_dir = ""
  config.data.mode = "resize"
  config.data.normalization = "rgb"
  config.data.cache = False
  config.data.data_shards = 0
  # "": data_pipeline.splits.VAL_FRACTION of the training subjects.
  config.data.val_subjects = ""

  # The network: drml_jax.model.DRML's keyword arguments (num_aus comes from
  # the dataset). A checkpoint stores exactly these.
  config.model = ml_collections.ConfigDict()
  config.model.input_size = 170
  config.model.grid = (8, 8)
  config.model.region_layer = True
  config.model.intensity = False
  config.model.region_bn = "affine"
  config.model.init = "pytorch"
  config.model.dropout = 0.5

  # How the convolutions run: same numbers, speed only (never stored with a
  # checkpoint; see drml_jax/model/convs.py and drml_jax/model/region.py).
  config.kernels = ml_collections.ConfigDict()
  config.kernels.conv = "auto"
  config.kernels.region_conv = "auto"
  config.kernels.region_layout = "auto"

  # The training loss (drml_jax/train/losses.py); the evaluation loss is the
  # occurrence loss, never weighted. Neither the seed nor the paper weighs
  # positives or predicts intensity.
  config.loss = ml_collections.ConfigDict()
  config.loss.pos_weight = "none"
  config.loss.intensity_weight = 1.0

  # SGD as torch.optim.SGD computes it: make_optimizer's arguments.
  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 0.001
  config.optim.momentum = 0.9
  config.optim.weight_decay = 0.005
  config.optim.schedule = "constant"
  config.optim.step_size = 0
  config.optim.gamma = 0.1
  config.optim.caffe_bias_rule = False

  # Loop.
  # How "best" is chosen: val (the validation subjects' mean F1 each epoch;
  # the test split scores the final and the validation-best models) or test
  # (the seed's practice: all training subjects, the test split each epoch,
  # best on it - chosen on the data it is scored on).
  config.selection = "val"
  config.batch_size = 64
  config.eval_batch_size = 64
  config.num_epochs = 20
  config.seed = 0
  config.log_every_steps = 10
  config.checkpoint_every_steps = 500

  # Output.
  config.workdir = "workdirs/seed"
  config.export_torch = ""
  config.progress = True

  # Multi-host: on when `distributed` is set, `coordinator_address` given,
  # or JAX_COORDINATOR_ADDRESS in the environment.
  config.hosts = ml_collections.ConfigDict()
  config.hosts.distributed = False
  config.hosts.coordinator_address = ""
  config.hosts.num_processes = 0
  config.hosts.process_id = -1
  return config
