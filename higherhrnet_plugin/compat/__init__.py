from .checkpoint_loader import install_checkpoint_loader
from .cpu_distributed import install_cpu_distributed

__all__ = ['install_checkpoint_loader', 'install_cpu_distributed']
