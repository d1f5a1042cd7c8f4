"""Training for the learned methods of napari-unrollrecon: one entry point for every method.

Run from the repository root::

    python -m training methods                                  # trainable methods and configs
    python -m training train cgpd-csnet --profile cpu           # one process
    torchrun --standalone --nproc_per_node 2 -m training train cgpd-csnet --profile cpu   # DDP
    python -m training train cgpd-csnet --profile cpu --resume auto
    python -m training cost cgpd-csnet --profile paper          # FLOPs and a GPU-time estimate

Modules: ``config`` (TOML configs and profiles), ``data`` (datasets, patches, leakage guards),
``dist`` (torch.distributed set-up), ``checkpoint`` (safetensors + JSON, no pickle), ``trainer``
(the loop), ``methods`` (finding a method's ``TRAINING``), ``cost`` (FLOP counts). See
docs/training.md.
"""
