from .ae_higher_resolution_head import AEHigherResolutionHead
from .swahr_head import SWAHRHead

__all__ = ['AEHigherResolutionHead', 'SWAHRHead']
