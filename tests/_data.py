"""Fixture builders for the end-to-end tests: tiny datasets and config overrides.

The datasets are folders in the layout the configs expect, built from the real samples in
``../shared/data`` (symlinks, nothing is copied into the repository)::

    coco_folder(dst)       annotations/person_keypoints_{train,val}2017.json  (test_coco.json)
                           train2017/, val2017/                                (the 4 images)
    crowdpose_folder(dst)  annotations/mmpose_crowdpose_{trainval,test}.json  (test_crowdpose.json)
                           images/                                             (the 2 images)
    toy_folder(dst, ...)   tools/make_toy_dataset.py's synthetic layout (images are generated)

The overrides are flat ``{dotted.key: value}`` dicts, applied in-process with
``Config.merge_from_dict`` or passed to ``mim`` as ``--cfg-options`` (:func:`cli_options`)::

    cfg = Config.fromfile('configs/higherhrnet_w32_coco_512.py')
    cfg.merge_from_dict({**cpu_overrides(), **data_overrides(cfg, root),
                         **input_size_overrides(cfg, 256)})
"""
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import torch
from mmengine.config import Config

from _tools import load_tool

SHARED_DATA = Path(__file__).resolve().parents[1] / '..' / 'shared' / 'data'
REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / 'configs'
# Everything that reads images or annotations; the evaluators read the val/test json.
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def _link_images(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for image in sorted(src.glob('*.jpg')):
        link = dst / image.name
        if not link.exists():
            link.symlink_to(image.resolve())


def _link_annotations(ann: Path, dst: Path, names: List[str]) -> None:
    (dst / 'annotations').mkdir(parents=True, exist_ok=True)
    for name in names:
        link = dst / 'annotations' / name
        if not link.exists():
            link.symlink_to(ann.resolve())


def coco_folder(dst: Path) -> Path:
    """COCO layout with the 4 shared COCO images as both train2017 and val2017.

    Args:
        dst (Path): Folder to fill (created if missing).

    Returns:
        Path: ``dst``, usable as a config's ``data_root``.
    """
    src = SHARED_DATA / 'coco'
    _link_annotations(src / 'test_coco.json', dst,
                      ['person_keypoints_train2017.json', 'person_keypoints_val2017.json'])
    for split in ('train2017', 'val2017'):
        _link_images(src, dst / split)
    return dst


def crowdpose_folder(dst: Path) -> Path:
    """CrowdPose layout (mmpose's) with the 2 shared CrowdPose images as trainval and test.

    Args:
        dst (Path): Folder to fill (created if missing).

    Returns:
        Path: ``dst``, usable as a config's ``data_root``.
    """
    src = SHARED_DATA / 'crowdpose'
    _link_annotations(src / 'test_crowdpose.json', dst,
                      ['mmpose_crowdpose_trainval.json', 'mmpose_crowdpose_test.json'])
    _link_images(src, dst / 'images')
    return dst


def toy_folder(dst: Path, num_train: int = 4, num_val: int = 2, size: int = 256) -> Path:
    """A small synthetic dataset of ``tools/make_toy_dataset.py`` (seed 0).

    Returns:
        Path: ``dst``, usable as the toy config's ``data_root``.
    """
    module = load_tool('make_toy_dataset')
    argv = ['--out', str(dst), '--num-train', str(num_train), '--num-val', str(num_val),
            '--size', str(size), '--seed', '0']
    if module.main(argv) != 0:
        raise RuntimeError(f'make_toy_dataset.py {" ".join(argv)} failed')
    return dst


def cpu_overrides(batch_size: int = 2) -> Dict[str, Any]:
    """No pretrained download, no worker processes, small training batches."""
    overrides: Dict[str, Any] = {'model.backbone.init_cfg': None}
    for loader in LOADERS:
        overrides[f'{loader}.num_workers'] = 0
        overrides[f'{loader}.persistent_workers'] = False
    overrides['train_dataloader.batch_size'] = batch_size
    return overrides


def dataset_key(cfg: Config, loader: str) -> str:
    """Dotted key of the dataset that reads the files in ``cfg[loader]``: the one a
    ``ReliableDataset`` wraps (``<loader>.dataset.dataset``, the shipped configs), else
    ``<loader>.dataset``. The pipeline is ``<loader>.dataset.pipeline`` in both layouts."""
    wrapped = cfg[loader]['dataset'].get('type') == 'ReliableDataset'
    return f'{loader}.dataset.dataset' if wrapped else f'{loader}.dataset'


def dataset_cfg(cfg: Config, loader: str) -> dict:
    """The config of the dataset at :func:`dataset_key` (type, data_root, ann_file, ...)."""
    dataset = cfg[loader]['dataset']
    return dataset['dataset'] if dataset.get('type') == 'ReliableDataset' else dataset


def data_overrides(cfg: Config, data_root: Path) -> Dict[str, Any]:
    """Point every dataset and evaluator of ``cfg`` at ``data_root`` (same sub-paths)."""
    overrides: Dict[str, Any] = {
        f'{dataset_key(cfg, loader)}.data_root': str(data_root)
        for loader in LOADERS
    }
    for evaluator, loader in zip(EVALUATORS, LOADERS[1:]):
        ann_file = dataset_cfg(cfg, loader)['ann_file']
        overrides[f'{evaluator}.ann_file'] = str(data_root / ann_file)
    return overrides


def input_size_overrides(cfg: Config, size: int) -> Dict[str, Any]:
    """Change the network input of ``cfg`` to ``size`` x ``size``.

    The input size lives in the codec (``model.head.decoder`` and ``GenerateTarget``'s
    encoder: ``input_size`` and the ``heatmap_sizes`` that keep their strides), in the train
    pipeline's ``BottomupRandomAffine`` and in the test pipelines' ``HigherHRNetResize``.

    Args:
        cfg (Config): A loaded HigherHRNet config.
        size (int): New square input size, a multiple of 64.

    Returns:
        Dict[str, Any]: Dotted keys (pipeline steps by index) and their new values.
    """
    codec = cfg.model.head.decoder
    old_size = codec['input_size'][0]
    codec_overrides = {
        'input_size': (size, size),
        'heatmap_sizes': tuple(
            (w * size // old_size, h * size // old_size) for w, h in codec['heatmap_sizes']),
    }
    overrides = {f'model.head.decoder.{k}': v for k, v in codec_overrides.items()}
    for loader in LOADERS:
        for index, step in enumerate(cfg[loader]['dataset']['pipeline']):
            prefix = f'{loader}.dataset.pipeline.{index}'
            if step['type'] == 'BottomupRandomAffine':
                overrides[f'{prefix}.input_size'] = (size, size)
            elif step['type'] == 'GenerateTarget':
                overrides.update({f'{prefix}.encoder.{k}': v for k, v in codec_overrides.items()})
            elif step['type'] == 'HigherHRNetResize':
                overrides[f'{prefix}.input_size'] = size
    return overrides


def pipeline_index(cfg: Config, loader: str, step_type: str) -> int:
    """Index of the first step of type ``step_type`` in ``cfg[loader]``'s pipeline."""
    types = [step['type'] for step in cfg[loader]['dataset']['pipeline']]
    return types.index(step_type)


def cli_options(overrides: Dict[str, Any]) -> List[str]:
    """``--cfg-options`` arguments (``key=value``, no spaces) that mmengine's DictAction
    parses back into ``overrides``' values (ints, floats, bools, None, tuples, lists, str)."""
    return [f'{key}={_cli_value(value)}' for key, value in overrides.items()]


def _cli_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        items = ','.join(_cli_value(v) for v in value)
        # One-element tuples keep their comma, as in Python.
        return f'({items},)' if isinstance(value, tuple) and len(value) == 1 else (
            f'({items})' if isinstance(value, tuple) else f'[{items}]')
    return str(value)


def load_config(name: str, data_root: Path, size: int, batch_size: int = 2) -> Config:
    """``configs/<name>`` with :func:`cpu_overrides`, :func:`data_overrides` and
    :func:`input_size_overrides` applied."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    cfg.merge_from_dict({
        **cpu_overrides(batch_size),
        **data_overrides(cfg, data_root),
        **input_size_overrides(cfg, size),
    })
    return cfg


def mim_env() -> Dict[str, str]:
    """The venv's ``bin`` first on PATH (``mim`` and the python it runs), one thread each."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ,
                PATH=f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}',
                OMP_NUM_THREADS='1',
                MKL_NUM_THREADS='1')


def run_mim(args: List[str], cwd: Path = REPO_ROOT, timeout: float = 300) -> str:
    """Run ``mim <args>`` from ``cwd`` and return its stdout + stderr.

    Raises:
        AssertionError: If it fails or runs past ``timeout`` seconds; then the whole process
            group (mim, the launcher and its workers) is killed.
    """
    with subprocess.Popen(['mim', *args],
                          cwd=cwd,
                          env=mim_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          start_new_session=True) as process:
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log, _ = process.communicate()
            raise AssertionError(f'mim {" ".join(args)} ran past {timeout} s:\n{log[-6000:]}')
    assert process.returncode == 0, f'mim {" ".join(args)} failed:\n{log[-6000:]}'
    return log


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op torch thread inside: on 2 cores shared with other jobs, 2 OpenMP threads
    spin against each other and a CPU step gets up to 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
