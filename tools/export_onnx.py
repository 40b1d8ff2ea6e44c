"""Export a HigherHRNet checkpoint to ONNX: network, flip test, aggregation and NMS in one graph.

Usage::

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--verify-image IMG]
        [--flip | --no-flip] [--exporter dynamo|torchscript]

The graph takes (B, 3, H, W) normalised images of any canvas ``HigherHRNetResize`` makes
(dynamic batch, height and width) and returns the aggregated ``heatmaps`` (B, K, H, W),
``tags`` (B, K, H, W, L) and the NMS ``peaks`` (B, K, H, W) on the input canvas. The input
size, flip setting, normalisation, keypoint order, flip indices and decoder settings go into
the file's metadata, so ``tools/infer_onnx.py`` needs nothing else.

Before ``OUT.onnx`` appears, onnx's checker passes the graph and onnxruntime runs it on a real
image (``--verify-image``; default: a COCO image of ../shared/data, else docs/demo_toy.jpg)
against the eager model; any difference beyond 1e-4 (of the largest value) is refused with
the output's name and size. The file is written to a hidden sibling and renamed into place:
on any failure nothing is written. Problems with the inputs exit with status 1 and a message.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from higherhrnet_plugin.deploy import DeployError
from higherhrnet_plugin.deploy.export import EXPORTERS, export_onnx

REPO = Path(__file__).resolve().parents[1]
# A real COCO image where the shared sample data is, else the picture in the repository.
VERIFY_IMAGES = (REPO / '..' / 'shared' / 'data' / 'coco' / '000000000785.jpg',
                 REPO / 'docs' / 'demo_toy.jpg')
DEFAULT_VERIFY_IMAGE = next((p for p in VERIFY_IMAGES if p.is_file()), VERIFY_IMAGES[-1])


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='checkpoint that fits the config')
    parser.add_argument('out', type=Path, help='.onnx file to write (its folder must exist)')
    parser.add_argument('--verify-image',
                        type=Path,
                        default=DEFAULT_VERIFY_IMAGE,
                        help='real image the export is verified on')
    parser.add_argument('--flip',
                        action=argparse.BooleanOptionalAction,
                        default=None,
                        help="flip test in the graph (default: the config's "
                        'model.test_cfg.flip_test)')
    parser.add_argument('--exporter',
                        choices=EXPORTERS,
                        default='dynamo',
                        help="torch's exporter: dynamo (default, torch's own default) or "
                        'torchscript (deprecated by torch; same graph, ~10x faster export)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (1 with a message for unusable inputs)."""
    args = parse_args(argv)
    try:
        report = export_onnx(args.config, args.checkpoint, args.out, args.verify_image,
                             args.flip, args.exporter)
    except DeployError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    differences = ', '.join(f'{name} {value:.2g}' for name, value in report['differences'].items())
    print(f"wrote {report['out']} in {report['seconds']:.0f} s; onnxruntime vs eager on "
          f"{args.verify_image.name} (canvas {report['canvas'][0]}x{report['canvas'][1]}): "
          f'max |difference| {differences}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
