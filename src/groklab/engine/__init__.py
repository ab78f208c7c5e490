"""The one training engine: batched optimizers, the trainer, device and thread set-up."""
