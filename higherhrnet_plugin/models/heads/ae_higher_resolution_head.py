"""Multi-resolution associative-embedding head of HigherHRNet.

Architecture and test-time aggregation follow the official code
(HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/models/pose_higher_hrnet.py`` and
``lib/core/inference.py``, MIT licence); ``aggregation='mmpose0x'`` follows mmpose 0.x
(``mmpose/core/evaluation/bottom_up_eval.py``).
"""
from typing import List, Optional, Sequence

import torch
from mmengine.structures import InstanceData, PixelData
from mmpose.models.backbones.resnet import BasicBlock
from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import (Features, OptConfigType, OptMultiConfig, OptSampleList,
                                 Predictions, SampleList)
from torch import Tensor, nn

from ..utils.aggregation import (AGGREGATION_MODES, FlipPair, LevelOutputs, OutputLayout,
                                 aggregate_scales, crop_to_canvas)
from ..utils.head_utils import (check_lengths, level_fields, level_mask, loss_config,
                                resolve_tag_levels)

# ConvTranspose2d (padding, output_padding) giving exactly 2x the input size (official table).
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


@MODELS.register_module()
class AEHigherResolutionHead(BaseHead):
    """HigherHRNet head: AE heatmaps+tags at 1/4, deconvolution, heatmaps at 1/2.

    ``final_layers[0]`` predicts K heatmaps and the tags from the backbone's 1/4 features.
    Each deconv layer takes the features concatenated with the previous prediction
    (features first, as the official code, so official weights load unchanged), upsamples
    them 2x with a transposed convolution + BN + ReLU, refines with ``num_basic_blocks``
    ResNet BasicBlocks, and ``final_layers[i + 1]`` predicts the next level. Sub-module
    names and nesting equal the official model and mmpose 0.x's head
    (``deconv_layers.0.0.0.weight``, ``deconv_layers.0.1.0.conv1.weight``, ...).

    Note:
        - batch size: B
        - keypoint number: K
        - tag channels: T = K if ``tag_per_keypoint`` else 1
        - tag maps stacked for decoding: L (2 with flip test: original, flipped)
        - output level: l = 0 .. ``num_deconv_layers``, stride 4 / 2**l w.r.t. the input
        - input canvas of a sample: (W, H) = ``metainfo['input_size']``

    Test-time aggregation (:meth:`predict`), ``test_cfg['aggregation']``:

        - ``'official'`` (default, ``lib/core/inference.py``): every level is resized
          (bilinear, ``align_corners=False``) to the highest-resolution level, heatmaps are
          averaged over levels, tags come from the AE levels; flipped outputs are resized,
          then mirrored and channel-permuted with ``flip_indices``; everything is then
          resized to the canvas (W, H) and heatmaps are averaged with their flip. The 1/4
          maps therefore go through two 2x resizes.
        - ``'mmpose0x'``: each level (mirrored first for the flipped view) is resized
          directly to the canvas, then averaged. The 1/4 heatmaps differ from ``'official'``
          by up to ~1.5 % of a Gaussian peak.

        Multi-scale test: the flip-averaged heatmaps of every scale are resized to the
        scale-1 canvas, summed from the largest scale down and divided by the scale count;
        tags come from scale 1 only. Maps are cropped to the sample's canvas before any
        resize, so padding added when batching samples of different sizes is ignored.

    Args:
        in_channels (int): Channels of the backbone's 1/4 features. Defaults to ``32``.
        num_keypoints (int): K. Defaults to ``17``.
        tag_per_keypoint (bool): One tag map per keypoint (else one shared map).
            Defaults to ``True``.
        num_deconv_layers (int): Upsampling stages. Defaults to ``1``.
        deconv_out_channels (Sequence[int]): Channels of each deconv layer.
            Defaults to ``(32, )``.
        deconv_kernel_sizes (Sequence[int]): Kernel (2, 3 or 4) of each deconv layer.
            Defaults to ``(4, )``.
        num_basic_blocks (int): BasicBlocks after each transposed convolution.
            Defaults to ``4``.
        cat_output (Sequence[bool]): Whether each deconv layer also takes the previous
            level's prediction. Defaults to ``(True, )``.
        with_ae_loss (Sequence[bool], optional): Whether each level predicts tags (one entry
            per level, ``num_deconv_layers + 1``). ``None`` reads it from the decoder (tags at
            its ``tag_level``), or tags at level 0 without a decoder; a value that disagrees
            with the decoder is an error. Defaults to ``None``.
        final_kernel_size (int): Kernel (1 or 3) of the prediction convs. Defaults to ``1``.
        loss (dict, optional): Loss config, called as ``loss(outputs, heatmaps, masks,
            keypoint_indices)``. ``None`` means ``dict(type='HigherHRNetLoss')``. The head
            passes its ``num_keypoints`` and ``with_ae_loss`` to it (stating them in the loss
            config too is allowed only with equal values).
        decoder (dict, optional): Codec config with ``batch_decode(heatmaps (B, K, H, W),
            tags (B, K, H, W, L))``. Defaults to ``None``.
        init_cfg (dict | list, optional): ``None`` means the official initialisation
            (:attr:`default_init_cfg`).

    .. _`HigherHRNet`: https://arxiv.org/abs/1908.10357
    """

    def __init__(self,
                 in_channels: int = 32,
                 num_keypoints: int = 17,
                 tag_per_keypoint: bool = True,
                 num_deconv_layers: int = 1,
                 deconv_out_channels: Sequence[int] = (32, ),
                 deconv_kernel_sizes: Sequence[int] = (4, ),
                 num_basic_blocks: int = 4,
                 cat_output: Sequence[bool] = (True, ),
                 with_ae_loss: Optional[Sequence[bool]] = None,
                 final_kernel_size: int = 1,
                 loss: OptConfigType = None,
                 decoder: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(self.default_init_cfg if init_cfg is None else init_cfg)
        check_lengths(num_deconv_layers,
                       deconv_out_channels=deconv_out_channels,
                       deconv_kernel_sizes=deconv_kernel_sizes,
                       cat_output=cat_output)
        if final_kernel_size not in (1, 3):
            raise ValueError(f'final_kernel_size must be 1 or 3, got {final_kernel_size}')
        self.decoder = None if decoder is None else KEYPOINT_CODECS.build(decoder)
        with_ae_loss = resolve_tag_levels(with_ae_loss, num_deconv_layers + 1, self.decoder)

        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.tag_per_keypoint = tag_per_keypoint
        self.cat_output = tuple(cat_output)
        self.with_ae_loss = with_ae_loss
        tag_channels = num_keypoints if tag_per_keypoint else 1
        self.level_channels = tuple(num_keypoints + (tag_channels if ae else 0)
                                    for ae in with_ae_loss)

        feature_channels = (in_channels, *deconv_out_channels)
        self.final_layers = nn.ModuleList(
            nn.Conv2d(c_in, c_out, final_kernel_size, padding=final_kernel_size // 2)
            for c_in, c_out in zip(feature_channels, self.level_channels))
        self.deconv_layers = nn.ModuleList(
            self._make_deconv_layer(
                feature_channels[i] + (self.level_channels[i] if cat_output[i] else 0),
                feature_channels[i + 1], deconv_kernel_sizes[i], num_basic_blocks)
            for i in range(num_deconv_layers))

        # The head owns K and the AE levels; the loss it builds reads them from here.
        self.loss_module = MODELS.build(
            loss_config(loss, num_keypoints=num_keypoints, with_ae_loss=with_ae_loss))

    @property
    def layout(self) -> OutputLayout:
        """Channel layout of the level outputs, for :mod:`..utils.aggregation`."""
        return OutputLayout(self.num_keypoints, self.with_ae_loss, self.tag_per_keypoint)

    @property
    def default_init_cfg(self) -> List[dict]:
        """Official init: every (transposed) conv N(0, 0.001), bias 0; BN weight 1, bias 0.

        mmpose 0.x left the convs of the deconv BasicBlocks at PyTorch's default init; the
        official code (followed here) draws them from N(0, 0.001) too.
        """
        return [
            dict(type='Normal', layer=['Conv2d', 'ConvTranspose2d'], std=0.001, bias=0),
            dict(type='Constant', layer=['BatchNorm2d'], val=1, bias=0),
        ]

    @staticmethod
    def _make_deconv_layer(in_channels: int, out_channels: int, kernel_size: int,
                           num_basic_blocks: int) -> nn.Sequential:
        """Sequential(Sequential(ConvT, BN, ReLU), Sequential(BasicBlock) x n): official keys."""
        if kernel_size not in _DECONV_PADDING:
            raise ValueError(f'deconv kernel size must be one of {sorted(_DECONV_PADDING)}, '
                             f'got {kernel_size}')
        padding, output_padding = _DECONV_PADDING[kernel_size]
        deconv = nn.ConvTranspose2d(in_channels,
                                    out_channels,
                                    kernel_size,
                                    stride=2,
                                    padding=padding,
                                    output_padding=output_padding,
                                    bias=False)
        upsample = nn.Sequential(deconv, nn.BatchNorm2d(out_channels, momentum=0.1),
                                 nn.ReLU(inplace=True))
        blocks = [
            nn.Sequential(BasicBlock(out_channels, out_channels)) for _ in range(num_basic_blocks)
        ]
        return nn.Sequential(upsample, *blocks)

    def forward(self, feats: Sequence[Tensor]) -> LevelOutputs:
        """Predict every level from the backbone's 1/4 features ``feats[0]``.

        Args:
            feats (Sequence[Tensor]): Backbone outputs; ``feats[0]`` is (B, C, H/4, W/4).

        Returns:
            List[Tensor]: Level l in shape (B, K + T, H_l, W_l) for AE levels, (B, K, H_l, W_l)
            otherwise; heatmaps first. Official recipe: (B, 2K, H/4, W/4), (B, K, H/2, W/2).
        """
        x = feats[0]
        prediction = self.final_layers[0](x)
        outputs = [prediction]
        for i, deconv_layer in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, prediction), dim=1)
            x = deconv_layer(x)
            prediction = self.final_layers[i + 1](x)
            outputs.append(prediction)
        return outputs

    def loss(self,
             feats: Sequence[Tensor],
             batch_data_samples: SampleList,
             train_cfg: OptConfigType = None) -> dict:
        """Compute the losses of a batch.

        Targets are read per level from the packed ``MultilevelPixelData``:
        ``d.gt_fields[l].heatmaps`` (K, H_l, W_l) and ``d.gt_fields[l].heatmap_mask``
        (1, H_l, W_l), 1 = supervised (all ones if the pipeline made no mask), and
        ``d.gt_instance_labels.keypoint_indices`` (N_i, K, 2) into the tag level.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.
            batch_data_samples (List[PoseDataSample]): Samples with the targets above.
            train_cfg (dict, optional): Unused.

        Returns:
            dict: The loss module's named losses.
        """
        outputs = self.forward(feats)
        heatmaps, masks = [], []
        for level, output in enumerate(outputs):
            per_sample = [level_fields(d, level, len(outputs)) for d in batch_data_samples]
            heatmaps.append(torch.stack([fields.heatmaps for fields in per_sample]))
            masks.append(torch.stack([level_mask(fields, output) for fields in per_sample]))
        keypoint_indices = [d.gt_instance_labels.keypoint_indices for d in batch_data_samples]
        return self.loss_module(outputs, heatmaps, masks, keypoint_indices)

    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: OptConfigType = None) -> Predictions:
        """Aggregate flip/multi-scale outputs on each sample's canvas and group persons.

        Args:
            feats (Features): As :meth:`BottomupPoseEstimator.predict` passes them: the
                backbone tuple; ``[orig, flipped]`` with ``flip_test``; with
                ``multiscale_test`` a list over ``[1] + metainfo['aug_scales']`` of those.
            batch_data_samples (List[PoseDataSample]): Samples with ``input_size``
                (canvas (W, H) at scale 1), ``flip_indices`` and, for multi-scale,
                ``aug_scales``.
            test_cfg (dict, optional): ``flip_test``, ``multiscale_test``,
                ``aggregation`` (``'official'`` | ``'mmpose0x'``), ``output_heatmaps``.

        Returns:
            List[InstanceData] | Tuple[List[InstanceData], List[PixelData]]: per sample
            ``keypoints`` (N, K, 2) in canvas pixels, ``keypoint_scores`` (N, K) and
            ``bbox_scores`` (N,) (person scores); with ``output_heatmaps`` also
            ``PixelData(heatmaps=(K, H, W), tags=(L*K, H, W))``, tags L-major.
        """
        test_cfg = test_cfg or {}
        flip_test = test_cfg.get('flip_test', False)
        aggregation = test_cfg.get('aggregation', 'official')
        if aggregation not in AGGREGATION_MODES:
            raise ValueError(f'test_cfg.aggregation must be one of {AGGREGATION_MODES}, '
                             f'got {aggregation!r}')
        metainfo = batch_data_samples[0].metainfo
        if test_cfg.get('multiscale_test', False):
            scales, scale_feats = [1.0, *metainfo['aug_scales']], feats
        else:
            scales, scale_feats = [1.0], [feats]
        pairs = [self.forward_views(_feats, flip_test) for _feats in scale_feats]
        flip_indices = metainfo['flip_indices'] if flip_test else None

        output_heatmaps = test_cfg.get('output_heatmaps', False)
        preds, fields = [], []
        for index, data_sample in enumerate(batch_data_samples):
            canvas = tuple(int(v) for v in data_sample.metainfo['input_size'])
            sample_pairs = [
                crop_to_canvas(pair, index, (round(canvas[0] * s), round(canvas[1] * s)))
                for pair, s in zip(pairs, scales)
            ]
            heatmaps, tags = aggregate_scales(sample_pairs, scales, canvas, self.layout,
                                              flip_indices, aggregation)
            preds.append(self._decode(heatmaps[0], tags[0]))
            if output_heatmaps:
                # PixelData holds (C, H, W) maps: tags (K, H, W, L) -> (L*K, H, W), L-major.
                fields.append(
                    PixelData(heatmaps=heatmaps[0].detach(),
                              tags=tags[0].detach().permute(3, 0, 1, 2).flatten(0, 1)))
        return (preds, fields) if output_heatmaps else preds

    def forward_views(self, feats: Features, flip_test: bool) -> FlipPair:
        """Level outputs of the original view and, with flip test, of the flipped one."""
        if flip_test:
            return FlipPair(self.forward(feats[0]), self.forward(feats[1]))
        return FlipPair(self.forward(feats))

    def _decode(self, heatmaps: Tensor, tags: Tensor) -> InstanceData:
        """Group one sample's (K, H, W) heatmaps and (K, H, W, L) tags into persons."""
        if self.decoder is None:
            raise RuntimeError(f'{self.__class__.__name__} needs a decoder for predict()')
        keypoints, keypoint_scores, instance_scores = self.decoder.batch_decode(
            heatmaps[None], tags[None])[0]
        return InstanceData(keypoints=keypoints,
                            keypoint_scores=keypoint_scores,
                            bbox_scores=instance_scores)
