from .higher_hrnet_data_preprocessor import HigherHRNetDataPreprocessor

__all__ = ['HigherHRNetDataPreprocessor']
