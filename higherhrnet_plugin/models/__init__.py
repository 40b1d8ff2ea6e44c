from .backbones import HRNetPreset
from .data_preprocessors import HigherHRNetDataPreprocessor
from .heads import AEHigherResolutionHead
from .losses import HigherHRNetLoss
from .pose_estimators import HigherHRNet

__all__ = [
    'HRNetPreset', 'HigherHRNetDataPreprocessor', 'AEHigherResolutionHead', 'HigherHRNetLoss',
    'HigherHRNet'
]
