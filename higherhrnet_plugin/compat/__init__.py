from .checkpoint_loader import install_checkpoint_loader

__all__ = ['install_checkpoint_loader']
