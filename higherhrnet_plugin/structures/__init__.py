from .canvas_transforms import (ROUNDINGS, align_to_64, canvas_geometry, canvas_to_image,
                                get_warp_matrix, integer_center, warp_to_canvas)

__all__ = [
    'ROUNDINGS', 'align_to_64', 'canvas_geometry', 'canvas_to_image', 'get_warp_matrix',
    'integer_center', 'warp_to_canvas'
]
