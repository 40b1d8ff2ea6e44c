from .checkpoint_layout import (check_layout, convert_state_dict, detect_family, infer_arch,
                                rename_key, to_plugin_layout, unwrap_state_dict)

__all__ = [
    'check_layout', 'convert_state_dict', 'detect_family', 'infer_arch', 'rename_key',
    'to_plugin_layout', 'unwrap_state_dict'
]
