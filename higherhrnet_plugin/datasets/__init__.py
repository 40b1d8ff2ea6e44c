from .transforms import HigherHRNetResize

__all__ = ['HigherHRNetResize']
