from .ae_higher_resolution_head import AEHigherResolutionHead

__all__ = ['AEHigherResolutionHead']
