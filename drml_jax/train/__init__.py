"""Training DRML: `python -m drml_jax.train`, the loop, its steps, loss, optimizer, batches and folds."""
