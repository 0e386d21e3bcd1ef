"""How a process runs: devices and hosts, and the host memory of XLA:CPU steps."""
