"""Helpers of :class:`AEHigherResolutionHead`: argument checks, the per-level facts it shares
with its loss and codec, and per-level targets."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.structures import PixelData
from torch import Tensor


def check_lengths(expected: int, **sequences: Sequence) -> None:
    """Raise if a per-layer/per-level argument does not have ``expected`` entries."""
    for name, value in sequences.items():
        if len(value) != expected:
            raise ValueError(f'{name} needs {expected} entries, got {tuple(value)}')


def level_fields(data_sample, level: int, num_levels: int) -> PixelData:
    """The ``PixelData`` of one level of a sample's multi-level targets."""
    gt_fields = data_sample.gt_fields
    if getattr(gt_fields, 'nlevel', None) != num_levels:
        raise ValueError(f'targets have {getattr(gt_fields, "nlevel", 1)} levels, '
                         f'the head predicts {num_levels}')
    return gt_fields[level]


def level_mask(fields: PixelData, output: Tensor) -> Tensor:
    """(H_l, W_l) supervision mask of a level; all ones if the pipeline made none."""
    if 'heatmap_mask' not in fields:
        return output.new_ones(output.shape[-2:], dtype=torch.bool)
    return fields.heatmap_mask.reshape(fields.heatmap_mask.shape[-2:])


def resolve_tag_levels(with_ae_loss: Optional[Sequence[bool]], num_levels: int,
                       decoder) -> Tuple[bool, ...]:
    """The levels that predict tags: as given, else from the codec's ``tag_level``.

    The codec encodes tag indices into one level (``tag_level``) and the loss reads the tags
    there, so the head's tag levels must be exactly that one level when a codec is given.

    Args:
        with_ae_loss (Sequence[bool], optional): Per-level flags stated in the config.
        num_levels (int): Output levels of the head.
        decoder (BaseKeypointCodec, optional): The head's codec.

    Returns:
        Tuple[bool, ...]: One flag per level.
    """
    tag_level = getattr(decoder, 'tag_level', None)
    if decoder is not None and len(decoder.heatmap_sizes) != num_levels:
        raise ValueError(f'the codec has {len(decoder.heatmap_sizes)} heatmap_sizes, the head '
                         f'predicts {num_levels} levels (num_deconv_layers + 1)')
    if with_ae_loss is None:
        level = 0 if tag_level is None else tag_level
        return tuple(index == level for index in range(num_levels))
    check_lengths(num_levels, with_ae_loss=with_ae_loss)
    flags = tuple(bool(flag) for flag in with_ae_loss)
    if tag_level is not None and flags != tuple(i == tag_level for i in range(num_levels)):
        raise ValueError(f'head with_ae_loss={flags} disagrees with the codec\'s '
                         f'tag_level={tag_level}: tags must be predicted at the tag level '
                         f'only; leave with_ae_loss out of the head config to follow the codec')
    return flags


def loss_config(loss: Optional[dict], **owned) -> dict:
    """The loss config with the head's own facts (``owned``) filled in.

    Args:
        loss (dict, optional): Loss config; ``None`` for ``HigherHRNetLoss``.
        **owned: Settings the head owns (K, AE levels); a loss config may repeat them
            only with equal values.

    Returns:
        dict: The config to build.
    """
    config = dict(type='HigherHRNetLoss') if loss is None else dict(loss)
    for key, value in owned.items():
        if key in config and _as_plain(config[key]) != _as_plain(value):
            raise ValueError(f'loss {key}={config[key]!r} disagrees with the head\'s '
                             f'{key}={value!r}; state it once, in the head')
        config[key] = value
    return config


def _as_plain(value):
    """Tuples and lists compare equal (configs turn tuples into lists)."""
    return tuple(_as_plain(v) for v in value) if isinstance(value, (list, tuple)) else value
