"""Run mmengine's ``pytorch`` launcher on CPU-only machines (gloo).

mmengine 0.10.7 assumes a GPU per process in two places, so ``--launcher pytorch`` with
``env_cfg.dist_cfg.backend=gloo`` fails on a machine without CUDA:

- ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device(LOCAL_RANK)``
  before ``init_process_group`` ("Found no NVIDIA driver on your system");
- ``Runner.wrap_model`` builds ``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``, which
  torch rejects for a module on the CPU ("device_ids ... only work with ... GPU modules").

Both are patched only for the CPU case: with CUDA available nothing changes.
"""
import torch
from mmengine.dist import utils as dist_utils
from mmengine.model import MMDistributedDataParallel

_PATCHED = '_higherhrnet_cpu_patch'


def _cpu_init_dist_pytorch(original):
    """``_init_dist_pytorch`` that skips ``torch.cuda.set_device`` without CUDA."""

    def init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        # RANK, WORLD_SIZE, MASTER_ADDR/PORT come from the launcher's environment.
        torch.distributed.init_process_group(backend=backend, **kwargs)

    setattr(init_dist_pytorch, _PATCHED, True)
    return init_dist_pytorch


def _cpu_ddp_init(original):
    """``MMDistributedDataParallel.__init__`` that drops ``device_ids`` for a CPU module."""

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original(self, module, detect_anomalous_params, **kwargs)

    setattr(__init__, _PATCHED, True)
    return __init__


def install_cpu_distributed() -> None:
    """Patch the two GPU assumptions above; idempotent, called on package import."""
    if not getattr(dist_utils._init_dist_pytorch, _PATCHED, False):
        dist_utils._init_dist_pytorch = _cpu_init_dist_pytorch(dist_utils._init_dist_pytorch)
    if not getattr(MMDistributedDataParallel.__init__, _PATCHED, False):
        MMDistributedDataParallel.__init__ = _cpu_ddp_init(MMDistributedDataParallel.__init__)
