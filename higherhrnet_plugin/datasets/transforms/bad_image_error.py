"""The error of an image file that cannot serve as a training or test sample."""
from typing import Optional


class BadImageError(ValueError):
    """An image file is missing, unreadable, empty, truncated or not an image.

    Raised by :class:`~higherhrnet_plugin.datasets.transforms.CheckedLoadImage`;
    :class:`~higherhrnet_plugin.datasets.ReliableDataset` catches it to skip the sample.

    Args:
        path (str): The image file.
        reason (str, optional): What is wrong with it. Defaults to ``None`` (``path`` is then
            the whole message, as when PyTorch re-raises the error from a worker process).
    """

    def __init__(self, path: str, reason: Optional[str] = None) -> None:
        super().__init__(path if reason is None else f'{path}: {reason}')
        self.path, self.reason = path, reason
