"""Convert a published HigherHRNet checkpoint into an mmengine checkpoint of this plugin.

Usage::

    python tools/convert_checkpoint.py SRC DST [--config CONFIG] [--force]

SRC may be an official file (``pose_higher_hrnet_w32_512.pth``; the FP16-trained
``w32_640`` / ``w48_640`` with their ``1.`` prefix and half-precision weights), a SWAHR one
(greatlog/SWAHR-HumanPose: the same file names, plus the scale branch ``conv_scale_layers``)
or an mmpose 0.x one (``higher_hrnet32_coco_512x512-8ae85183_20200713.pth``). Every tensor is
renamed to ``backbone.*`` / ``head.*``, cast to float32 and checked against the state dict of
the model built from CONFIG: no key may be missing, unexpected or of another shape.

Without ``--config`` the config is picked from the plugin's ``configs/`` by the
checkpoint's width and keypoint number (``higherhrnet_w{W}_{coco|crowdpose}_{size}.py``;
``..._{size}_swahr.py`` for weights with SWAHR's scale branch), preferring the input size
named in SRC's file name (``..._640.pth`` -> ``..._640.py``).

DST is written atomically (temporary file + rename), never on failure, and an existing DST
is only replaced with ``--force``. It holds ``{'state_dict': ..., 'meta': {'source',
'family', 'config', 'converted_by'}}``. SRC is read with ``torch.load(weights_only=True)``
(the plugin's allow-list of numpy / mmengine objects), so no pickled code runs.
"""
import argparse
import os
import pickle
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS

import higherhrnet_plugin
from higherhrnet_plugin.compat.checkpoint_loader import trusted_load
from higherhrnet_plugin.models.utils import (convert_state_dict, detect_family, infer_arch,
                                             unwrap_state_dict)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / 'configs'
DATASETS = {17: 'coco', 14: 'crowdpose'}  # keypoint number -> config dataset name
# File signatures worth naming when SRC is not a checkpoint at all.
_MAGIC = {b'\xff\xd8\xff': 'a JPEG image', b'\x89PNG': 'a PNG image', b'GIF8': 'a GIF image',
          b'%PDF': 'a PDF document', b'\x1f\x8b': 'a gzip archive'}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', type=Path, help='published checkpoint (.pth)')
    parser.add_argument('dst', type=Path, help='converted mmengine checkpoint to write')
    parser.add_argument('--config', type=Path, default=None,
                        help='model config to check against (default: by width and K)')
    parser.add_argument('--force', action='store_true', help='replace an existing DST')
    return parser.parse_args(argv)


def read_checkpoint(path: Path) -> Any:
    """``torch.load`` a local file safely, with clear errors for files that are not checkpoints.

    Args:
        path (Path): A ``.pth`` file: zip archive (torch >= 1.6) or legacy pickle.

    Returns:
        Any: The unpickled object, tensors on the CPU.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ValueError: If it is empty, truncated, not a torch file, or holds pickled objects
            outside the safe allow-list of :mod:`higherhrnet_plugin.compat.checkpoint_loader`.
    """
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist or is not a file')
    with open(path, 'rb') as f:
        head = f.read(8)
    if head.startswith(b'PK'):
        if not zipfile.is_zipfile(path):  # the central directory sits at the end
            raise ValueError(f'{path} is truncated or corrupted: its zip archive has no '
                             f'central directory')
    elif not head.startswith(b'\x80'):  # legacy torch files are pickles (protocol >= 2)
        raise ValueError(f'{path} is not a PyTorch checkpoint: it is {_describe(head)}')
    try:
        return trusted_load(str(path), map_location='cpu')
    except pickle.UnpicklingError as err:  # the safe loader's message names the object
        raise ValueError(str(err)) from err
    except Exception as err:  # torch's own errors name neither the file nor the likely cause
        raise ValueError(f'{path} is truncated or corrupted: torch could not read it '
                         f'({type(err).__name__}: {err})') from err


def default_config(width: int, num_keypoints: int, source_name: str,
                   swahr: bool = False) -> Path:
    """The plugin config for a HigherHRNet-W``width`` with ``num_keypoints`` keypoints.

    Args:
        width (int): Backbone width W (32, 48).
        num_keypoints (int): K (17 COCO, 14 CrowdPose).
        source_name (str): SRC's file name; an input size in it (``512``, ``640x640``)
            selects the config of that size when there is one.
        swahr (bool): The weights have SWAHR's scale branch: pick a ``_swahr`` config.
            Defaults to ``False``.

    Returns:
        Path: ``configs/higherhrnet_w{W}_{dataset}_{size}[_swahr].py``; the smallest size if
        the name gives none.

    Raises:
        ValueError: If no such config exists (pass ``--config``).
    """
    dataset = DATASETS.get(num_keypoints)
    suffix = '_swahr' if swahr else ''
    pattern = re.compile(rf'higherhrnet_w{width}_{dataset}_(\d+){suffix}\.py')
    sizes = sorted((int(m.group(1)), p) for p in CONFIG_DIR.glob('*.py')
                   if (m := pattern.fullmatch(p.name)))
    if dataset is None or not sizes:
        raise ValueError(f'no {"SWAHR " if swahr else ""}config in {CONFIG_DIR} for width '
                         f'{width} and {num_keypoints} keypoints; pass --config')
    named = {int(s) for s in re.findall(r'(?<!\d)(\d{3,4})(?!\d)', source_name)}
    return next((p for size, p in sizes if size in named), sizes[0][1])


def model_layout(config: Path) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of the state dict of the model built from ``config`` (no weights loaded)."""
    cfg = Config.fromfile(str(config))  # its custom_imports register the plugin
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model = MODELS.build(cfg.model)  # init_weights() is never called: nothing is downloaded
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def save_atomically(obj: Any, dst: Path, force: bool = False) -> None:
    """``torch.save`` to a temporary file next to ``dst``, then rename it onto ``dst``.

    Raises:
        FileExistsError: If ``dst`` exists and ``force`` is false.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f'.{dst.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give DST the usual mode
        if dst.exists() and not force:  # it may have appeared while we converted
            raise FileExistsError(f'{dst} exists; pass --force to replace it')
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise


def convert_checkpoint(src: Path, dst: Path, config: Optional[Path] = None,
                       force: bool = False) -> Dict[str, str]:
    """Read ``src``, convert and check it, write ``dst``.

    Args:
        src (Path): Published checkpoint.
        dst (Path): Output file.
        config (Path, optional): Config of the target model. Defaults to
            :func:`default_config` for the checkpoint's width and keypoint number.
        force (bool): Replace an existing ``dst``. Defaults to ``False``.

    Returns:
        Dict[str, str]: The ``meta`` written into ``dst``.

    Raises:
        FileNotFoundError, FileExistsError, ValueError: With the reason; ``dst`` is untouched.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f'{dst} exists; pass --force to replace it')
    checkpoint = read_checkpoint(src)
    family = detect_family(checkpoint)
    if config is None:
        swahr = any('conv_scale_layers.' in key for key in unwrap_state_dict(checkpoint))
        config = default_config(*infer_arch(checkpoint), src.name, swahr)
    state_dict = convert_state_dict(checkpoint, expected=model_layout(config))
    meta = dict(source=src.name, family=family, config=_display_path(config),
                converted_by=f'higherhrnet_plugin {higherhrnet_plugin.__version__}')
    save_atomically(dict(state_dict=state_dict, meta=meta), dst, force)
    return meta


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        meta = convert_checkpoint(args.src, args.dst, args.config, args.force)
    except (OSError, ValueError) as err:
        print(f'convert_checkpoint: error: {err}', file=sys.stderr)
        return 1
    print(f'{args.dst}: {meta["family"]} checkpoint {meta["source"]} converted for '
          f'{meta["config"]}')
    return 0


def _describe(head: bytes) -> str:
    """A guess at what a non-checkpoint file is, from its first bytes."""
    if not head:
        return 'empty'
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    if all(32 <= b < 127 or b in b'\t\r\n' for b in head):
        return f'text (starts with {head.decode()!r})'
    return f'of an unknown format (starts with {head!r})'


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it
    os.umask(mask)
    return mask


def _display_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it, as given otherwise."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == '__main__':
    sys.exit(main())
