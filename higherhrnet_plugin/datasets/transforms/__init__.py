from .higher_hrnet_resize import HigherHRNetResize

__all__ = ['HigherHRNetResize']
