from .hrnet_preset import HRNetPreset

__all__ = ['HRNetPreset']
