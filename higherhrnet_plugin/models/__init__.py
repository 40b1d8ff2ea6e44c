from .backbones import HRNetPreset
from .heads import AEHigherResolutionHead
from .losses import HigherHRNetLoss
from .pose_estimators import HigherHRNet

__all__ = ['HRNetPreset', 'AEHigherResolutionHead', 'HigherHRNetLoss', 'HigherHRNet']
