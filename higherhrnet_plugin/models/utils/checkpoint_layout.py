"""Recognise the published HigherHRNet state dicts and map them onto this plugin's layout.

Families (docs/reference_spec.md §2):

    ==============  ==========================================================================
    official        HRNet/HigherHRNet-Human-Pose-Estimation ``pose_higher_hrnet_w32_512.pth``:
                    bare module names, ``conv1.weight`` ... ``stage4.*``,
                    ``final_layers.{0,1}.*``, ``deconv_layers.0.*``.
    official_fp16   the FP16-trained official files (``w32_640``, ``w48_640``): the same names
                    behind a leading ``1.`` (the FP16 wrapper
                    ``Sequential(tofp16(), model, tofp32())`` was saved whole), conv weights
                    stored as float16, BatchNorm as float32.
    swahr           greatlog/SWAHR-HumanPose (SWAHR, CVPR 2021; file names as the official ones):
                    the official bare names plus the scale branch ``conv_scale_layers.{0,1}.*``
                    (1x1 conv ``.0``, BN ``.1``, depth-wise 9x9 conv ``.3``), float32.
    mmpose0x        mmpose 0.x ``AssociativeEmbedding``: ``backbone.*`` + ``keypoint_head.*``,
                    usually inside ``{'state_dict': ..., 'meta': ...}``.
    plugin          this plugin (mmpose 1.x ``HigherHRNet``): ``backbone.*`` + ``head.*``.
    ==============  ==========================================================================

Below those prefixes all five use the same sub-keys (mmpose 0.x kept the official module
names), so the conversion is a pure rename plus a cast to float32; no tensor is reshaped or
permuted, because our head concatenates ``(features, 1/4 prediction)`` in the official order.

Note:
    - backbone width (32 or 48): W
    - keypoint number (17 COCO, 14 CrowdPose): K
    - head keys: ``final_layers.0.weight`` (2K, W, 1, 1) (K heatmaps + K tags),
      ``final_layers.1.weight`` (K, W, 1, 1), ``deconv_layers.0.0.0.weight``
      (W + 2K, W, 4, 4) (``ConvTranspose2d`` weights are (in, out, kH, kW)); SWAHR adds
      ``conv_scale_layers.{0,1}.0.weight`` (K, W, 1, 1) and ``.3.weight`` (K, 1, 9, 9)
"""
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from torch import Tensor

Shape = Tuple[int, ...]
StateDict = 'OrderedDict[str, Tensor]'

BACKBONE_MODULES = ('conv1', 'bn1', 'conv2', 'bn2', 'layer1', 'transition1', 'stage2',
                    'transition2', 'stage3', 'transition3', 'stage4')
HEAD_MODULES = ('final_layers', 'deconv_layers')
SCALE_MODULES = ('conv_scale_layers', )  # SWAHR's scale branch, part of the head
FAMILIES = ('official', 'official_fp16', 'swahr', 'mmpose0x', 'plugin')

# Top-level (backbone, head) prefixes of the prefixed families.
_PREFIXED = {'mmpose0x': ('backbone', 'keypoint_head'), 'plugin': ('backbone', 'head')}
_FP16_PREFIX = '1.'
# Non-learned constants older mmpose 1.x checkpoints carry; mmpose's own hook drops them.
_PREPROCESSOR = 'data_preprocessor.'
_HEAD_KEYS = ('final_layers.0.weight', 'final_layers.1.weight', 'deconv_layers.0.0.0.weight')
_SHOWN = 5  # names quoted per problem in an error message


def unwrap_state_dict(checkpoint: Any) -> StateDict:
    """The bare state dict inside a checkpoint object.

    Accepts a state dict, ``{'state_dict': sd, ...}`` (mmengine / mmcv) or ``{'model': sd}``
    (some copies of the official files), with or without a ``module.`` prefix on every key
    (``DataParallel``).

    Args:
        checkpoint (Any): What ``torch.load`` returned.

    Returns:
        OrderedDict[str, Tensor]: A new dict; the input is not modified.

    Raises:
        ValueError: If it is not a non-empty mapping of names to tensors.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'expected a state dict or a checkpoint dict, got a '
                         f'{type(checkpoint).__name__}')
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), Mapping):
            checkpoint = checkpoint[wrapper]
            break
    if not checkpoint:
        raise ValueError('the state dict is empty')
    bad = [repr(k) for k, v in checkpoint.items()
           if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise ValueError(f'not a state dict: {len(bad)} entries are not name -> tensor '
                         f'(e.g. {", ".join(bad[:_SHOWN])})')
    strip = len('module.') if all(k.startswith('module.') for k in checkpoint) else 0
    return OrderedDict((k[strip:], v) for k, v in checkpoint.items())


def detect_family(checkpoint: Any) -> str:
    """Which published layout a checkpoint uses (see the module docstring).

    Args:
        checkpoint (Any): A state dict or checkpoint dict, as for :func:`unwrap_state_dict`.

    Returns:
        str: One of ``'official'``, ``'official_fp16'``, ``'swahr'``, ``'mmpose0x'``,
        ``'plugin'``.

    Raises:
        ValueError: For anything else, naming what it looks like (a ResNet, DEKR, a
            single-resolution associative-embedding HRNet, an HRNet backbone alone, ...), or
            when the head's shapes are not those of a HigherHRNet head.
    """
    keys = list(unwrap_state_dict(checkpoint))
    family = _classify_keys(keys)
    if family is None:
        raise ValueError(f'not a HigherHRNet checkpoint: {_diagnose(keys)}')
    infer_arch(checkpoint)  # the head's shapes must fit too
    return family


def infer_arch(checkpoint: Any) -> Tuple[int, int]:
    """Backbone width and keypoint number from the head's weights, in any family.

    Args:
        checkpoint (Any): A state dict or checkpoint dict, as for :func:`unwrap_state_dict`.

    Returns:
        Tuple[int, int]: ``(W, K)``, e.g. ``(32, 17)`` or ``(48, 17)`` or ``(32, 14)``.

    Raises:
        ValueError: If a head weight is missing or the three shapes disagree with
            (2K, W, ...), (K, W, ...) and (W + 2K, W, ...).
    """
    state_dict = unwrap_state_dict(checkpoint)
    shapes = []
    for name in _HEAD_KEYS:
        found = [v for k, v in state_dict.items() if k == name or k.endswith('.' + name)]
        if len(found) != 1:
            raise ValueError(f'expected one "{name}" in the state dict, found {len(found)}')
        shapes.append(tuple(found[0].shape))
    if all(len(shape) == 4 for shape in shapes):
        num_keypoints, width = shapes[1][:2]
        heads = ((2 * num_keypoints, width), (num_keypoints, width),
                 (width + 2 * num_keypoints, width))
        if all(shape[:2] == head for shape, head in zip(shapes, heads)):
            return width, num_keypoints
    raise ValueError(
        f'the head weights are not those of a HigherHRNet head with one tag per keypoint: '
        f'{dict(zip(_HEAD_KEYS, shapes))}; expected (2K, W, k, k), (K, W, k, k) and '
        f'(W + 2K, W, k, k)')


def to_plugin_layout(state_dict: dict, prefix: str = '', *hook_args: Any) -> None:
    """``load_state_dict`` pre-hook: rename published HigherHRNet keys in place.

    Only keys under ``prefix`` are considered. If they form an official, official_fp16, SWAHR
    or mmpose 0.x state dict they are renamed to ``prefix + 'backbone.' / 'head.' + sub-key``
    and floating tensors are cast to float32; a plugin-layout or unrelated dict is left
    untouched, so ``load_state_dict`` reports its problems itself. Works before or after
    mmpose's own ``keypoint_head`` -> ``head`` hook (after it, a 0.x dict already reads as
    plugin layout).

    Args:
        state_dict (dict): Mutated in place.
        prefix (str): The module's prefix in ``state_dict``. Defaults to ``''``.
        *hook_args (Any): The remaining pre-hook arguments (``local_metadata``, ``strict``,
            ...), ignored.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    relative = [k[len(prefix):] for k in keys]
    if relative and all(k.startswith('module.') for k in relative):
        relative = [k[len('module.'):] for k in relative]
    family = _classify_keys(relative)
    if family in (None, 'plugin'):
        return
    for key, rel in zip(keys, relative):
        state_dict[prefix + rename_key(rel, family)] = _to_fp32(state_dict.pop(key))


def convert_state_dict(checkpoint: Any, *,
                       expected: Optional[Mapping[str, Any]] = None) -> StateDict:
    """Convert any recognised family to the plugin layout, float32, optionally checked.

    ``data_preprocessor.*`` entries (constants, not weights) are dropped.

    Args:
        checkpoint (Any): A state dict or checkpoint dict, as for :func:`unwrap_state_dict`.
        expected (Mapping[str, Tensor | Sequence[int]], optional): Key -> shape (or tensor)
            of the target model, e.g. ``model.state_dict()``. Defaults to ``None`` (no
            check).

    Returns:
        OrderedDict[str, Tensor]: ``backbone.*`` / ``head.*`` keys, float32 floating tensors
        (integer buffers such as ``num_batches_tracked`` keep their dtype).

    Raises:
        ValueError: If the family is not recognised (:func:`detect_family`) or, with
            ``expected``, if keys are missing, unexpected or of another shape.
    """
    family = detect_family(checkpoint)
    converted = OrderedDict((rename_key(k, family), _to_fp32(v))
                            for k, v in unwrap_state_dict(checkpoint).items()
                            if not k.startswith(_PREPROCESSOR))
    if expected is not None:
        check_layout(converted, expected)
    return converted


def check_layout(state_dict: Mapping[str, Tensor],
                 expected: Mapping[str, Any]) -> None:
    """Raise if ``state_dict`` differs from ``expected`` in keys or shapes.

    Args:
        state_dict (Mapping[str, Tensor]): The converted weights.
        expected (Mapping[str, Tensor | Sequence[int]]): Key -> shape (or tensor) of the
            target model, e.g. ``model.state_dict()``.

    Raises:
        ValueError: Naming the first few missing, unexpected and mismatched keys, with counts.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {_shape(expected[k])}'
                  for k, v in state_dict.items()
                  if k in expected and tuple(v.shape) != _shape(expected[k])]
    problems = [_summarise(what, names) for what, names in (
        ('missing', missing), ('unexpected', unexpected), ('with another shape', mismatched))
        if names]
    if problems:
        raise ValueError('the checkpoint does not fit the model: ' + '; '.join(problems) +
                         _scale_branch_hint(missing, unexpected))


def rename_key(key: str, family: str) -> str:
    """The plugin-layout name of ``key`` from a state dict of ``family``.

    Example:
        >>> rename_key('1.final_layers.0.weight', 'official_fp16')
        'head.final_layers.0.weight'
        >>> rename_key('keypoint_head.deconv_layers.0.0.0.weight', 'mmpose0x')
        'head.deconv_layers.0.0.0.weight'
    """
    if key.startswith(_PREPROCESSOR):  # estimator-level constants keep their name
        return key
    if family == 'official_fp16':
        key, family = key[len(_FP16_PREFIX):], 'official'
    if family in ('official', 'swahr'):
        head = key.split('.', 1)[0] in HEAD_MODULES + SCALE_MODULES
        return ('head.' if head else 'backbone.') + key
    if family == 'mmpose0x' and key.startswith('keypoint_head.'):
        return 'head.' + key[len('keypoint_head.'):]
    if family in FAMILIES:
        return key
    raise ValueError(f'unknown family {family!r}; expected one of {FAMILIES}')


def _classify_keys(keys: List[str]) -> Optional[str]:
    """The family of a list of bare keys, or ``None``; never raises."""
    keys = [k for k in keys if not k.startswith(_PREPROCESSOR)]
    if keys and all(k.startswith(_FP16_PREFIX) for k in keys):
        bare = [k[len(_FP16_PREFIX):] for k in keys]
        return 'official_fp16' if _is_official(bare) else None
    if _is_official(keys):
        return 'official'
    if _is_official(keys, SCALE_MODULES):  # not official: it has the scale branch
        return 'swahr'
    parts = _split_roots(keys)
    for family, (backbone, head) in _PREFIXED.items():
        # Our own checkpoints may come from a SWAHRHead; mmpose 0.x never had one.
        extra = SCALE_MODULES if family == 'plugin' else ()
        if (set(parts) == {backbone, head} and _is_official(parts[backbone] + parts[head], extra)
                and _has_head(parts[head])):
            return family
    return None


def _is_official(keys: List[str], extra_roots: Tuple[str, ...] = ()) -> bool:
    """Bare official names (and ``extra_roots``) only, with the HigherHRNet head and stem."""
    allowed = BACKBONE_MODULES + HEAD_MODULES + extra_roots
    return (bool(keys) and all(k.split('.', 1)[0] in allowed for k in keys)
            and 'conv1.weight' in keys and _has_head(keys))


def _has_head(keys: Iterable[str]) -> bool:
    return set(_HEAD_KEYS) <= set(keys)


def _split_roots(keys: List[str]) -> Dict[str, List[str]]:
    """``{'backbone': ['conv1.weight', ...], ...}``: keys grouped by their first name."""
    parts: Dict[str, List[str]] = {}
    for key in keys:
        root, _, rest = key.partition('.')
        parts.setdefault(root, []).append(rest)
    return parts


def _diagnose(keys: List[str]) -> str:
    """What an unrecognised state dict looks like, for the error message."""
    if all(k.startswith(_FP16_PREFIX) for k in keys):
        keys = [k[len(_FP16_PREFIX):] for k in keys]
    roots = sorted({k.split('.', 1)[0] for k in keys})

    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if has('head.heatmap_conv_layers.', 'head.offset_conv_layers.'):
        return ('it looks like an mmpose 1.x DEKR model (head.heatmap_conv_layers / '
                'head.offset_conv_layers)')
    if has('head.final_layer.', 'keypoint_head.final_layer.'):
        return ('it looks like a single-resolution associative-embedding HRNet ("final_layer"; '
                'HigherHRNet has "final_layers.{0,1}" and "deconv_layers")')
    if has('incre_modules.', 'downsamp_modules.', 'classifier.'):
        return ('it looks like an ImageNet HRNet classifier (incre_modules / classifier); use '
                'it as the backbone init_cfg, not as HigherHRNet weights')
    if has('layer4.', 'backbone.layer4.', 'fc.'):
        return 'it looks like a ResNet (layer2..layer4 / fc)'
    if roots == ['backbone'] or set(roots) <= set(BACKBONE_MODULES):
        return 'it holds an HRNet backbone only, without the final_layers / deconv_layers head'
    return f'unrecognised key layout; top-level names {roots[:10]}, first keys {keys[:3]}'


def _scale_branch_hint(missing: List[str], unexpected: List[str]) -> str:
    """A sentence for the one likely mix-up: SWAHR weights and a HigherHRNet model, or back."""

    def scale_keys(names: List[str]) -> bool:
        return any(f'{SCALE_MODULES[0]}.' in name for name in names)

    if scale_keys(unexpected) and not scale_keys(missing):
        return ('. The checkpoint has SWAHR\'s scale branch (conv_scale_layers): use a SWAHR '
                'config (configs/*_swahr.py, head type SWAHRHead)')
    if scale_keys(missing) and not scale_keys(unexpected):
        return ('. The model has SWAHR\'s scale branch (SWAHRHead) and the checkpoint has '
                'none: use a HigherHRNet config for HigherHRNet weights')
    return ''


def _summarise(what: str, names: List[str]) -> str:
    more = f', ... ({len(names) - _SHOWN} more)' if len(names) > _SHOWN else ''
    return f'{len(names)} {what} ({", ".join(names[:_SHOWN])}{more})'


def _shape(value: Union[Tensor, Sequence[int]]) -> Shape:
    return tuple(value.shape) if isinstance(value, Tensor) else tuple(value)


def _to_fp32(tensor: Tensor) -> Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor
