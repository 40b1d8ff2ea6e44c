"""HigherHRNet pose estimator: mmpose's bottom-up estimator plus what it lacks.

- Official HigherHRNet checkpoints (HRNet/HigherHRNet-Human-Pose-Estimation, keys without a
  prefix, FP16 ones with a leading ``1.`` and half-precision weights) load directly.
- Multi-scale test images travel in the metainfo (``aug_imgs``) because mmpose's
  ``PackPoseInputs`` and data preprocessor only carry one image size per sample.
- Predicted persons get ``bboxes`` (their keypoints' extent): mmpose's ``MMPoseInferencer``
  reports a person's score (``bbox_score``) only next to a ``bbox``.
"""
from typing import List, Optional, Union

import numpy as np
import torch
from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from mmpose.utils.typing import InstanceList, PixelDataList, SampleList
from torch import Tensor

from ..utils import to_plugin_layout


@MODELS.register_module()
class HigherHRNet(BottomupPoseEstimator):
    """Bottom-up estimator for HigherHRNet; arguments as :class:`BottomupPoseEstimator`.

    Additions:

        - a ``load_state_dict`` pre-hook mapping official checkpoint keys to this model's
          (``conv1.weight`` -> ``backbone.conv1.weight``, ``final_layers.0.weight`` ->
          ``head.final_layers.0.weight``, optional ``1.``/``module.`` prefixes stripped,
          fp16 cast to fp32), run after mmpose's own ``keypoint_head`` -> ``head`` hook;
        - multi-scale test with :class:`HigherHRNetResize` ``aug_scales``: the resized
          images of the extra scales are read from ``metainfo['aug_imgs']`` (list
          ``aug_imgs`` in ``PackPoseInputs.meta_keys``), normalised by the model's data
          preprocessor like the main image and passed on as mmpose's image pyramid;
        - ``pred_instances.bboxes`` (N, 4) ``x1, y1, x2, y2``: the extent of each person's
          found (or refined) keypoints, score > 0; missing ones sit at (0, 0) and are left
          out (the official code has no boxes). Without them mmpose's
          ``MMPoseInferencer`` drops the person score (``split_instances`` writes
          ``bbox_score`` only with a ``bbox``); COCO evaluation ignores them.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Renames official keys in place; a no-op for plugin-layout state dicts.
        self._register_load_state_dict_pre_hook(to_plugin_layout)

    def predict(self, inputs: Union[Tensor, List[Tensor]], data_samples: SampleList) -> SampleList:
        """As :meth:`BottomupPoseEstimator.predict`, building the multi-scale pyramid first.

        Args:
            inputs (Tensor | List[Tensor]): (B, 3, H, W) scale-1 images, or the pyramid
                ``[scale 1, *aug_scales]`` already batched.
            data_samples (List[PoseDataSample]): With ``aug_scales``/``aug_imgs`` metainfo
                for multi-scale test.

        Returns:
            List[PoseDataSample]: Samples with ``pred_instances`` in image coordinates.
        """
        if self.test_cfg.get('multiscale_test', False) and isinstance(inputs, Tensor):
            inputs = [inputs, *self._aug_inputs(data_samples)]
        return super().predict(inputs, data_samples)

    def _aug_inputs(self, data_samples: SampleList) -> List[Tensor]:
        """Batched, normalised (B, 3, H_s, W_s) images of every extra scale."""
        num_scales = len(data_samples[0].metainfo['aug_scales'])
        batches = []
        for scale_index in range(num_scales):
            images = [
                torch.from_numpy(d.metainfo['aug_imgs'][scale_index]).permute(2, 0, 1)
                for d in data_samples
            ]
            # The model's own preprocessor (channel order, normalisation, padding); blank
            # samples take the batch metainfo it writes.
            data = self.data_preprocessor(
                dict(inputs=images, data_samples=[PoseDataSample() for _ in images]))
            batches.append(data['inputs'])
        return batches

    def add_pred_to_datasample(self, batch_pred_instances: InstanceList,
                               batch_pred_fields: Optional[PixelDataList],
                               batch_data_samples: SampleList) -> SampleList:
        """As :meth:`BottomupPoseEstimator.add_pred_to_datasample`, adding ``bboxes`` first.

        The boxes are taken in canvas pixels, next to the keypoints, so that mmpose maps
        both to image pixels alike.
        """
        for instances in batch_pred_instances:
            if 'bboxes' not in instances:
                instances.bboxes = keypoint_extent(instances.keypoints,
                                                   instances.keypoint_scores)
        return super().add_pred_to_datasample(batch_pred_instances, batch_pred_fields,
                                              batch_data_samples)


def keypoint_extent(keypoints: np.ndarray, keypoint_scores: np.ndarray) -> np.ndarray:
    """Boxes enclosing each person's found keypoints.

    Args:
        keypoints (np.ndarray): (N, K, 2) keypoints.
        keypoint_scores (np.ndarray): (N, K) scores; 0 marks a keypoint that was not found
            (its coordinates are (0, 0)). A person with none found gets the box of all K.

    Returns:
        np.ndarray: (N, 4) boxes ``x1, y1, x2, y2``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    found = np.asarray(keypoint_scores) > 0
    found[~found.any(axis=1)] = True
    low = np.where(found[..., None], keypoints, np.inf).min(axis=1)
    high = np.where(found[..., None], keypoints, -np.inf).max(axis=1)
    return np.concatenate([low, high], axis=1).astype(np.float32)
