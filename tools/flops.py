"""Parameters and FLOPs of a HigherHRNet config, in the official README's convention.

Usage::

    python tools/flops.py [CONFIG] [--input W [H]] [--no-mmengine]

``CONFIG`` defaults to ``configs/higherhrnet_w32_coco_512.py``; ``--input`` to the codec's
``input_size``. Both counts are for one forward pass of one image (backbone + head, every
level); the flip test runs it twice.

Conventions:

- **GMACs (official)**: the official README's "GFLOPs" (W32: 47.9 at 512x512, 74.8 at 640;
  W48: 154.3 at 640) are multiply-adds counted as the official ``get_model_summary``
  (``lib/utils/utils.py``) does: every ``Conv2d`` and ``ConvTranspose2d`` contributes
  ``prod(weight.shape) * prod(output spatial size)``; biases, BN, ReLU, upsampling and
  additions count nothing. For the head's stride-2 transposed convolution that is 4x its
  real MACs: it is counted per output pixel, while each input pixel feeds a kernel window
  (W32 at 512: 2.21 G instead of 0.55 G).
- **mmengine**: ``mmengine.analysis.FlopAnalyzer`` (fvcore's rules, one MAC = one "flop"):
  convolutions by their real MACs (transposed ones on their input grid), batch norm one per
  element, nearest upsampling one per output element; ReLU and additions count nothing.
  So ``mmengine conv`` = official - 3/4 of the transposed convolution.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS
from torch import Tensor, nn

import higherhrnet_plugin  # noqa: F401  (registers the model)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / 'configs' / 'higherhrnet_w32_coco_512.py'
# The official README's numbers (GMACs) for comparison: (config file, W, H) -> G.
OFFICIAL_GMACS = {
    ('higherhrnet_w32_coco_512.py', 512, 512): 47.9,
    ('higherhrnet_w32_coco_640.py', 640, 640): 74.8,
    ('higherhrnet_w48_coco_640.py', 640, 640): 154.3,
}


def build_network(cfg: Config) -> nn.Module:
    """The config's model on CPU, eval mode, random weights (no pretrained download)."""
    init_default_scope('mmpose')
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (BN buffers excluded, as the official count)."""
    return sum(p.numel() for p in model.parameters())


def official_macs(model: nn.Module, inputs: Tensor) -> Dict[str, int]:
    """MACs of every (transposed) convolution in the official convention, summed per type.

    Args:
        model (nn.Module): A pose estimator; ``model(inputs, None)`` runs the network.
        inputs (Tensor): (1, 3, H, W) image batch.

    Returns:
        Dict[str, int]: ``Conv2d``, ``ConvTranspose2d`` and ``total``.
    """
    counts = dict(Conv2d=0, ConvTranspose2d=0)

    def hook(module: nn.Module, _, output: Tensor) -> None:
        counts[type(module).__name__] += module.weight.numel() * output[0, 0].numel()

    handles = [
        m.register_forward_hook(hook) for m in model.modules()
        if type(m) in (nn.Conv2d, nn.ConvTranspose2d)
    ]
    try:
        with torch.no_grad():
            model(inputs, None)
    finally:
        for handle in handles:
            handle.remove()
    return dict(counts, total=sum(counts.values()))


def mmengine_flops(model: nn.Module, inputs: Tensor) -> Dict[str, int]:
    """mmengine's ``FlopAnalyzer`` count per operator type and ``total``."""
    analyzer = FlopAnalyzer(model, (inputs, None))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return dict(analyzer.by_operator(), total=analyzer.total())


def complexity(config: str,
               input_size: Optional[Tuple[int, int]] = None,
               with_mmengine: bool = True) -> dict:
    """Parameters and operation counts of ``config`` at ``input_size`` (W, H).

    Returns:
        dict: ``config``, ``input_size`` (W, H), ``params``, ``official_macs`` and, with
        ``with_mmengine``, ``mmengine_flops`` (see :func:`official_macs`,
        :func:`mmengine_flops`), plus ``readme_gmacs`` when the README lists the case.
    """
    cfg = Config.fromfile(config)
    if input_size is None:
        input_size = tuple(cfg.model.head.decoder['input_size'])
    model = build_network(cfg)
    width, height = input_size
    inputs = torch.zeros(1, 3, height, width)
    result = dict(config=Path(config).name,
                  input_size=[width, height],
                  params=count_parameters(model),
                  official_macs=official_macs(model, inputs))
    if with_mmengine:
        result['mmengine_flops'] = mmengine_flops(model, inputs)
    readme = OFFICIAL_GMACS.get((Path(config).name, width, height))
    if readme is not None:
        result['readme_gmacs'] = readme
    return result


def format_result(result: dict) -> str:
    """Markdown lines for one :func:`complexity` result."""
    giga = 1e9
    macs = result['official_macs']
    width, height = result['input_size']
    lines = [
        f"## {result['config']}, input {width}x{height}",
        f"- params: {result['params']:,}",
        f"- GMACs, official convention (conv + transposed conv, per output pixel): "
        f"{macs['total'] / giga:.2f} (transposed conv {macs['ConvTranspose2d'] / giga:.2f})",
    ]
    if 'readme_gmacs' in result:
        lines.append(f"- official README: {result['readme_gmacs']} GFLOPs (= GMACs), "
                     f"ours / README = {macs['total'] / giga / result['readme_gmacs']:.4f}")
    if 'mmengine_flops' in result:
        ops = result['mmengine_flops']
        detail = ', '.join(f'{k} {v / giga:.2f}' for k, v in ops.items() if k != 'total')
        lines.append(f"- mmengine FlopAnalyzer (1 MAC = 1 flop): {ops['total'] / giga:.2f} G "
                     f"({detail})")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default=str(DEFAULT_CONFIG))
    parser.add_argument('--input',
                        nargs='+',
                        type=int,
                        metavar='SIZE',
                        help='input W [H] (one value: square); default: the codec input_size')
    parser.add_argument('--no-mmengine',
                        action='store_true',
                        help='skip mmengine\'s FlopAnalyzer (slow for W48)')
    args = parser.parse_args(argv)
    if args.input is not None:
        if len(args.input) not in (1, 2) or min(args.input) <= 0:
            parser.error('--input takes W or W H, positive')
        args.input = (args.input[0], args.input[-1])
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    print(format_result(complexity(args.config, args.input, not args.no_mmengine)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
