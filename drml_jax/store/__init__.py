"""What is kept on disk: work directories, orbax checkpoints, PyTorch checkpoints."""
