from .backbones import HRNetPreset
from .data_preprocessors import HigherHRNetDataPreprocessor
from .heads import AEHigherResolutionHead, SWAHRHead
from .losses import HigherHRNetLoss, SWAHRLoss
from .pose_estimators import HigherHRNet

__all__ = [
    'HRNetPreset', 'HigherHRNetDataPreprocessor', 'AEHigherResolutionHead', 'SWAHRHead',
    'HigherHRNetLoss', 'SWAHRLoss', 'HigherHRNet'
]
