from .bad_image_error import BadImageError
from .bottomup_heatmap_mask import BottomupHeatmapMask
from .checked_load_image import CheckedLoadImage
from .higher_hrnet_resize import HigherHRNetResize

__all__ = ['HigherHRNetResize', 'BottomupHeatmapMask', 'CheckedLoadImage', 'BadImageError']
