"""Data parallelism over every device of every process with jax.sharding.

State is replicated over a one-axis Mesh and each batch is split along it,
so BatchNorm statistics and the loss are those of the global batch. The
mesh axis is Auto: the region layer's reshapes need the compiler to choose
shardings (an Explicit axis raises ShardingTypeError there).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def wants_distributed(hosts) -> bool:
  """Whether a config's `hosts` or the environment ask for a multi-process run."""
  return bool(
    hosts.distributed
    or hosts.coordinator_address
    or os.environ.get("JAX_COORDINATOR_ADDRESS")
  )


def initialize(hosts) -> None:
  """Joins the processes of a multi-host run (jax.distributed) when asked.

  CPU devices exchange through gloo (accelerators use their own
  collectives). Must run before any JAX computation.
  """
  if not wants_distributed(hosts):
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    coordinator_address=hosts.coordinator_address or None,
    num_processes=hosts.num_processes or None,
    process_id=hosts.process_id if hosts.process_id >= 0 else None,
  )


def make_mesh() -> Mesh:
  """A one-axis mesh over all devices of all processes."""
  return jax.make_mesh(
    (jax.device_count(),),
    (DATA_AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
  )


def replicate(tree, mesh: Mesh):
  """Places `tree` whole on every device of the mesh, in every process.

  Each process passes the same values; arrays that already have this
  sharding (restored from a checkpoint) are kept as they are. An array on
  one device is placed again even where the mesh is that one device: jit
  keys its cache on the kind of sharding, and the train step, given a
  state on one device, would compile a second time for the mesh-sharded
  state it returns. Within one process the arrays are placed by
  `jax.device_put`, whose buffers a step can donate; an array made from a
  host copy wraps that copy's memory, so the first step would copy the
  whole state instead of updating it in place.
  """
  sharding = NamedSharding(mesh, PartitionSpec())

  def put(x):
    if isinstance(x, jax.Array) and x.sharding == sharding:
      return x
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(
        put(jax.random.key_data(x)), impl=jax.random.key_impl(x)
      )
    if sharding.is_fully_addressable:
      return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(
      host.shape, sharding, lambda index: host[index]
    )

  return jax.tree.map(put, tree)


def replicated_like(tree, mesh: Mesh):
  """Abstract arrays of `tree`'s shapes, replicated over the mesh (restore targets)."""
  sharding = NamedSharding(mesh, PartitionSpec())
  return jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
    tree,
  )


def shard_batch(batch: dict, mesh: Mesh) -> dict:
  """Global arrays from this process's rows of a batch, split over the mesh."""
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  arrays = {
    key: jax.make_array_from_process_local_data(sharding, value)
    for key, value in batch.items()
  }
  if mesh.devices.flat[0].platform == "cpu":
    # Ready before the step is called: a CPU step whose inputs are still
    # being copied runs later on a worker thread, out of host_memory's reach.
    jax.block_until_ready(arrays)
  return arrays


def fetch(tree):
  """Numpy copies of replicated arrays (this process's copy of each)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def check_batch_size(batch_size: int, name: str = "--batch-size") -> None:
  """Raises a one-line ValueError unless the batch splits over all devices."""
  if batch_size % jax.device_count():
    raise ValueError(
      f"{name} {batch_size} does not split over {jax.device_count()} "
      "devices: choose a multiple of the device count"
    )
