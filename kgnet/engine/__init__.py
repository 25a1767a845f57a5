"""Training machinery: losses, the two-stage loop, checkpoints, distributed set-up."""
