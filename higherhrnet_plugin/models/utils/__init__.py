from .aggregation import (AGGREGATION_MODES, FlipPair, OutputLayout, aggregate_flip,
                          aggregate_levels, aggregate_scales, crop_to_canvas, resize_maps,
                          unflip_levels)
from .checkpoint_layout import (check_layout, convert_state_dict, detect_family, infer_arch,
                                rename_key, to_plugin_layout, unwrap_state_dict)

__all__ = [
    'AGGREGATION_MODES', 'FlipPair', 'OutputLayout', 'aggregate_flip', 'aggregate_levels',
    'aggregate_scales', 'crop_to_canvas', 'resize_maps', 'unflip_levels', 'check_layout',
    'convert_state_dict', 'detect_family', 'infer_arch', 'rename_key', 'to_plugin_layout',
    'unwrap_state_dict'
]
