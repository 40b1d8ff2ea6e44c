"""ReliableDataset (+ ResumableSampler keys): seeded samples, skipped images, checked test sets."""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmpose.registry import DATASETS
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _tiny_toy import make_data, tiny_config  # noqa: E402

from higherhrnet_plugin.datasets import ReliableDataset, ResumableSampler  # noqa: E402
from higherhrnet_plugin.datasets.transforms import BadImageError  # noqa: E402


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp('data'), num_train=6, num_val=3)


def build(data: Path, loader: str = 'train_dataloader', **wrapper) -> ReliableDataset:
    cfg = tiny_config(data, data / 'unused')[loader]['dataset']
    return DATASETS.build(dict(cfg, **wrapper))


def test_a_sample_is_a_function_of_seed_epoch_and_index(data):
    dataset = build(data, seed=7)
    first = dataset[(3, 2)]['inputs']
    assert torch.equal(dataset[(3, 2)]['inputs'], first)  # whatever ran in between
    assert not torch.equal(dataset[(4, 2)]['inputs'], first)  # another epoch, other augmentation
    assert torch.equal(dataset[2]['inputs'], dataset[(0, 2)]['inputs'])
    assert not torch.equal(build(data, seed=8)[(3, 2)]['inputs'], first)


def test_batches_do_not_depend_on_the_workers(data):
    """Two epochs with 0 and with 2 persistent workers: the same tensors, batch for batch."""
    dataset = build(data)
    epochs = {}
    for workers in (0, 2):
        sampler = ResumableSampler(dataset, shuffle=True, seed=0)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers,
                            persistent_workers=workers > 0, collate_fn=pseudo_collate)
        epochs[workers] = []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            epochs[workers] += [torch.stack(batch['inputs']) for batch in loader]
    assert len(epochs[0]) == 6 and all(map(torch.equal, epochs[0], epochs[2]))


def test_resumable_sampler_keys_and_mid_epoch_start(data):
    dataset = build(data)
    sampler, reference = ResumableSampler(dataset, seed=0), DefaultSampler(dataset, seed=0)
    for sampler_ in (sampler, reference):
        sampler_.set_epoch(1)
    order = list(reference)
    assert list(sampler) == [(1, i) for i in order]
    sampler.resume_at(1, 4)
    assert list(sampler) == [(1, i) for i in order[4:]] and len(sampler) == 2
    sampler.set_epoch(2)
    reference.set_epoch(2)
    assert list(sampler) == [(2, i) for i in reference] and len(sampler) == 6  # next epoch: all


def test_resumable_sampler_needs_reliable_dataset(data):
    with pytest.raises(TypeError, match='only ReliableDataset understands'):
        ResumableSampler(build(data).dataset)


def test_training_replaces_a_bad_image_and_says_which(data, monkeypatch):
    # A fixed seed: by default it is drawn from numpy's global generator, so the random
    # replacement (which may draw the bad image again) would depend on the tests run before.
    dataset = build(data, seed=0)
    inner = type(dataset.dataset)
    load, bad = inner.__getitem__, dataset.get_data_info(1)['img_path']

    def failing_load(self, index):
        if index == 1:
            raise BadImageError(bad, 'file not found')
        return load(self, index)

    monkeypatch.setattr(inner, '__getitem__', failing_load)
    sample = dataset[(0, 1)]
    skipped = sample['data_samples'].metainfo['skipped_images']
    assert skipped and set(skipped) == {(bad, 'file not found')}  # once, or again if redrawn
    assert sample['data_samples'].img_path != bad
    assert 'skipped_images' not in dataset[(0, 2)]['data_samples'].metainfo


def test_test_mode_leaves_bad_images_out(data, tmp_path):
    """The second of 3 validation images is missing: 2 samples, the first and the third."""
    dataset = build(data, 'val_dataloader', lazy_init=True)
    missing = dataset.dataset.get_data_info(1)['img_path']
    path = Path(missing)
    moved = tmp_path / path.name
    path.rename(moved)
    try:
        dataset.full_init()
        assert dataset.bad_images == [(missing, 'file not found')]
        assert len(dataset) == 2
        assert [dataset.get_data_info(i)['img_id'] for i in range(2)] == [
            dataset.dataset.get_data_info(i)['img_id'] for i in (0, 2)]
        assert dataset[1]['data_samples'].img_id == dataset.dataset.get_data_info(2)['img_id']
    finally:
        moved.rename(path)


def test_passes_the_dataset_interface_through(data):
    dataset = build(data, 'val_dataloader')
    inner = dataset.dataset
    assert dataset.metainfo['dataset_name'] == inner.metainfo['dataset_name'] == 'coco'
    assert dataset.pipeline is inner.pipeline
    assert dataset.test_mode and dataset.ann_file == inner.ann_file and dataset.bad_images == []


def test_stated_metainfo_must_be_the_wrapped_datasets(data):
    """The wrapper's ``metainfo`` (read by mmpose's inference APIs from the config) is checked
    against the wrapped dataset's, never applied."""
    coco = dict(from_file='configs/_base_/datasets/coco.py')
    assert build(data, 'val_dataloader', metainfo=coco).metainfo['num_keypoints'] == 17
    with pytest.raises(ValueError, match=r'metainfo \(crowdpose, 14 keypoints\) differs from '
                       r"the wrapped CocoDataset's \(coco, 17 keypoints\)"):
        build(data, 'val_dataloader',
              metainfo=dict(from_file='configs/_base_/datasets/crowdpose.py'))
