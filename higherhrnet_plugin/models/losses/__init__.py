from .higher_hrnet_loss import HigherHRNetLoss
from .swahr_loss import SWAHRLoss

__all__ = ['HigherHRNetLoss', 'SWAHRLoss']
