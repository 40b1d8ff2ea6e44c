"""Dataset wrapper for long runs: bad images skipped and counted, reproducible augmentation."""
import copy
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.dist import sync_random_seed
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS

from ..transforms import BadImageError, CheckedLoadImage
from .annotation_check import annotation_problem
from .seeded_rng import seeded_rng

# (image path, reason) of a skipped image.
Skipped = Tuple[str, str]
SampleKey = Union[int, Tuple[int, int]]


@DATASETS.register_module()
class ReliableDataset:
    """Wrap a pose dataset so that bad data and restarts do not spoil a long training run.

    **Bad images** (needs :class:`~higherhrnet_plugin.datasets.transforms.CheckedLoadImage`
    in the pipeline, which raises :class:`BadImageError` for a missing, unreadable, empty,
    truncated or undecodable file):

    - training: the sample is replaced by another one drawn at random (from the sample's
      seeded generator, so reproducibly), up to ``max_refetch`` times in a row; the skipped
      files travel with the replacement in its data sample's metainfo ``skipped_images``, a
      list of (path, reason), where
      :class:`~higherhrnet_plugin.engine.hooks.SkippedImagesHook` warns, counts and stops
      the run past its limit, in the main process whatever the number of workers;
    - test mode: every image is checked once when the dataset is initialised (decoded in
      threads); unusable ones are left out and listed in :attr:`bad_images`, which
      ``SkippedImagesHook`` reports before validation / test. A COCO metric still counts
      their persons as missed: its ground truth comes from the annotation file.

    **Annotation files**: an empty or malformed file fails when the dataset is built, with
    ``ValueError: annotation file <path>: <problem>`` (see :func:`annotation_problem`; the
    file is parsed once more for it, a few seconds for COCO's training file) instead of an
    error from deep inside the COCO API or silently dropped records, and so does a file
    that yields no sample.

    **Reproducible augmentation**: mmpose's random transforms draw from the global
    generators of the process that loads the sample (a dataloader worker), so a sample's
    augmentation depends on everything that worker drew before, and a restarted run (new
    workers) cannot repeat it. Here each sample is loaded with the generators seeded from
    ``(seed, epoch, index)`` (:func:`seeded_rng`), so its augmentation depends on nothing
    else. :class:`~higherhrnet_plugin.datasets.samplers.ResumableSampler` yields such
    ``(epoch, index)`` keys; a plain index is epoch 0. This is what makes a run resumed from
    any iteration equal to an uninterrupted one.

    The wrapper passes ``metainfo``, ``pipeline``, ``test_mode``, ``ann_file`` and
    ``get_data_info`` through (indices of the kept samples in test mode). In configs, give
    the pipeline to the wrapper, not to the wrapped dataset: mmpose's inference APIs
    (``inference_bottomup``, ``MMPoseInferencer``, ``tools/demo.py``) read
    ``test_dataloader.dataset.pipeline``. They also read the keypoint meta information
    (flip indices, skeleton) from ``<loader>.dataset.metainfo``, or else from the
    ``METAINFO`` of ``<loader>.dataset.type``, when a checkpoint carries none (converted
    official weights): state it on the wrapper too, as mmpose's ``CombinedDataset`` configs
    do::

        dataset=dict(type='ReliableDataset', pipeline=val_pipeline,
                     metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
                     dataset=dict(type='CocoDataset', data_root=..., ann_file=..., ...))

    Args:
        dataset (dict | BaseDataset): The dataset (e.g. mmpose's ``CocoDataset``) or its
            config.
        pipeline (list, optional): The wrapped dataset's pipeline (replaces the one in
            ``dataset``). Defaults to ``None``: the one in ``dataset``.
        metainfo (dict, optional): The wrapped dataset's meta information, as a config
            states it for mmpose's ``dataset_meta_from_config`` (e.g.
            ``dict(from_file='configs/_base_/datasets/coco.py')``). It changes nothing: it
            must equal the wrapped dataset's, else a ``ValueError`` names both. Defaults to
            ``None`` (not checked).
        seed (int, optional): Seed of the per-sample generators. Defaults to ``None``:
            mmengine's ``sync_random_seed()``, which follows the runner's ``randomness``.
        max_refetch (int): Replacement samples tried in a row in training before giving up.
            Defaults to 100.
        check_images (bool, optional): Check every image at initialisation. Defaults to
            ``None``: in test mode only (a training set is checked lazily, sample by sample).
        lazy_init (bool): Defer loading the annotations until :meth:`full_init`. Defaults
            to ``False``.
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 pipeline: Optional[List[dict]] = None,
                 metainfo: Optional[dict] = None,
                 seed: Optional[int] = None,
                 max_refetch: int = 100,
                 check_images: Optional[bool] = None,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            pipeline = dataset.get('pipeline', []) if pipeline is None else pipeline
            dataset = DATASETS.build(dict(dataset, pipeline=pipeline, lazy_init=True))
        self.dataset = dataset
        if metainfo is not None:
            _check_metainfo(metainfo, dataset)
        self.seed = sync_random_seed() if seed is None else seed
        self.max_refetch = max_refetch
        self.check_images = self.dataset.test_mode if check_images is None else check_images
        self.bad_images: List[Skipped] = []
        self._kept: Optional[List[int]] = None
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return self.dataset.metainfo

    @property
    def pipeline(self):
        """The wrapped dataset's pipeline."""
        return self.dataset.pipeline

    @property
    def test_mode(self) -> bool:
        """Whether the wrapped dataset is in test mode."""
        return self.dataset.test_mode

    @property
    def ann_file(self) -> str:
        """The wrapped dataset's annotation file."""
        return self.dataset.ann_file

    def full_init(self) -> None:
        """Check and load the annotations, then (in test mode) check the images."""
        if self._fully_initialized:
            return
        self._load_annotations()
        if self.check_images:
            self._kept, self.bad_images = self._screen_images()
        self._fully_initialized = True

    def get_data_info(self, idx: int) -> dict:
        """Data info of sample ``idx`` (of the kept samples, when images were checked)."""
        return self.dataset.get_data_info(self._inner_index(idx))

    def __len__(self) -> int:
        return len(self._kept) if self._kept is not None else len(self.dataset)

    def __getitem__(self, key: SampleKey) -> Any:
        """Sample ``key`` (an index or ``(epoch, index)``) with its seeded augmentation."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        with seeded_rng(self.seed, epoch, index):
            if self.test_mode:
                return self.dataset[self._inner_index(index)]
            return self._train_sample(index)

    def _inner_index(self, idx: int) -> int:
        return self._kept[idx] if self._kept is not None else idx

    def _train_sample(self, index: int) -> Any:
        """Sample ``index``, or the first loadable random replacement, with what was skipped."""
        skipped: List[Skipped] = []
        for _ in range(self.max_refetch + 1):
            try:
                data = self.dataset[index]
            except BadImageError as error:
                skipped.append((error.path, error.reason or str(error)))
                index = int(np.random.randint(len(self.dataset)))
                continue
            if skipped and 'data_samples' in data:
                data['data_samples'].set_metainfo(dict(skipped_images=skipped))
            return data
        raise RuntimeError(f'{len(skipped)} images in a row could not be loaded (is the image '
                           f'folder right?), e.g. {skipped[:3]}')

    def _load_annotations(self) -> None:
        """Check the annotation file, then load it (``full_init`` of the wrapped dataset)."""
        problem = annotation_problem(self.dataset.ann_file)
        if problem is not None:
            raise ValueError(f'annotation file {self.dataset.ann_file}: {problem}')
        self.dataset.full_init()
        if len(self.dataset) == 0:
            raise ValueError(f'annotation file {self.dataset.ann_file}: no sample (no image; '
                             'for training, no image with an annotated person)')

    def _screen_images(self) -> Tuple[List[int], List[Skipped]]:
        """Indices of the loadable images and (path, reason) of the others."""
        loader = _image_loader(self.dataset.pipeline.transforms)
        paths = [self.dataset.get_data_info(i)['img_path'] for i in range(len(self.dataset))]
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            problems = list(pool.map(lambda path: _problem(loader, path), paths))
        kept = [i for i, problem in enumerate(problems) if problem is None]
        return kept, [(p, problem) for p, problem in zip(paths, problems) if problem]


def _check_metainfo(stated: dict, dataset: BaseDataset) -> None:
    """Raise if the meta information ``stated`` differs from ``dataset``'s."""
    stated, actual = parse_pose_metainfo(copy.deepcopy(stated)), dataset.metainfo
    different = [key for key in stated if key not in actual or _differs(stated[key], actual[key])]
    if different:
        raise ValueError(
            f"ReliableDataset: metainfo ({stated.get('dataset_name')}, "
            f"{stated.get('num_keypoints')} keypoints) differs from the wrapped "
            f"{type(dataset).__name__}'s ({actual.get('dataset_name')}, "
            f"{actual.get('num_keypoints')} keypoints) in {', '.join(different)}")


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return not np.array_equal(a, b)
    return a != b


def _image_loader(transforms: Sequence) -> CheckedLoadImage:
    """The pipeline's ``CheckedLoadImage`` (its backend and decoder), or a default one."""
    return next((t for t in transforms if isinstance(t, CheckedLoadImage)), CheckedLoadImage())


def _problem(loader: CheckedLoadImage, path: str) -> Optional[str]:
    try:
        loader.read(path)
    except BadImageError as error:
        return error.reason or str(error)
    return None
