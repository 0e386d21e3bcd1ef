"""Every training field, with the values of the reproduction report (`seed`).

The presets (`default`, `seed`, `paper`) start from here and change what
differs. Each field is overridable from the command line as
`--field value` (`--no-field` for booleans).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()

  # Data.
  config.dataset = "disfa_plus"  # synthetic | disfa_plus | bp4d | disfa
  config.fold = 0  # 1..3, for bp4d and disfa
  config.dataset_config = ""  # builder config; "" is the builder's default
  config.data_dir = ""  # TFDS folder; "" is $DRML_DATA_DIR or ~/.cache/drml
  config.manual_dir = ""  # a licensed dataset's folder, read once to build it
  config.mode = "resize"  # resize | crop (random crop + mirror when training)
  config.normalization = "rgb"  # rgb (RGB / 255) | bgr_mean (BGR minus mean)
  config.cache = False  # keep the decoded images in memory after epoch 1
  config.data_shards = 0  # parts the data is read in; 0: one per process

  # Model (the keyword arguments of drml_jax.model.DRML).
  config.input_size = 170
  config.grid = (8, 8)
  config.region_layer = True  # --no-region-layer: the ablation
  config.region_bn = "affine"  # affine | batch_stats
  config.region_conv = "auto"  # auto | lax | matmul (same numbers, speed only)
  config.conv = "auto"  # auto | lax | chunked | fft: the dense convs (same numbers, speed only)
  config.init = "pytorch"  # pytorch | caffe | he
  config.dropout = 0.5

  # Optimizer: SGD as torch.optim.SGD computes it.
  config.learning_rate = 0.001
  config.momentum = 0.9
  config.weight_decay = 0.005
  config.schedule = "constant"  # constant | step
  config.step_size = 0  # steps between learning-rate drops (schedule=step)
  config.gamma = 0.1  # the drop factor (schedule=step)
  config.caffe_bias_rule = False  # biases: 2x learning rate, no decay

  # Loop.
  config.batch_size = 64  # global, over all devices and hosts
  config.eval_batch_size = 64
  config.num_epochs = 20
  config.seed = 0
  config.log_every_steps = 10
  config.checkpoint_every_steps = 0  # 0: at the end of each epoch only

  # Output.
  config.workdir = "workdirs/seed"
  config.export_torch = ""  # write a PyTorch state_dict here at the end
  config.progress = True  # the progress bar

  # Multi-host: on when `distributed` is set, `coordinator_address` given,
  # or JAX_COORDINATOR_ADDRESS in the environment.
  config.distributed = False
  config.coordinator_address = ""  # host:port of process 0
  config.num_processes = 0  # 0: detected from the cluster environment
  config.process_id = -1  # -1: detected from the cluster environment
  return config
