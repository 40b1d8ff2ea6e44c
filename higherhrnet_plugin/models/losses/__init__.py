from .higher_hrnet_loss import HigherHRNetLoss

__all__ = ['HigherHRNetLoss']
