"""Every config builds and runs one train step and one test step on CPU.

Each config is loaded as shipped, then pointed at a tiny dataset built from ``../shared/data``
(``tests/_data.py``), with a 256 input, no pretrained download and no worker processes. The
train step goes through the real train pipeline and ``model.train_step``; the test step goes
through the real test pipeline, ``model.test_step`` and the config's evaluator.
"""
import math
import sys
from pathlib import Path
from typing import Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmpose.apis.inference import dataset_meta_from_config
from mmpose.registry import MODELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import (CONFIG_DIR, LOADERS, coco_folder, cpu_overrides,  # noqa: E402
                   crowdpose_folder, data_overrides, dataset_cfg, input_size_overrides,
                   load_config, single_thread, toy_folder)

SIZE = 256
W32_PARAMS = 28_645_331  # the official HigherHRNet-W32 (COCO, 17 keypoints)
W48_PARAMS = 63_827_139
# CrowdPose, K = 14 instead of 17 (dK = 3), changes only the head (C = 32): final_layers[0]
# C -> 2K and final_layers[1] C -> K (1x1 with bias): (C + 1) * 3 * dK; the transposed conv
# (C + 2K) -> C, 4x4 without bias: 2 * dK * C * 16.
W32_CROWDPOSE_PARAMS = W32_PARAMS - (32 + 1) * 3 * 3 - 2 * 3 * 32 * 16  # 28,641,962
# SWAHR's scale branch per level (C = 32 or 48 at both levels): 1x1 conv C -> K with bias, BN,
# depth-wise 9x9 conv with bias: (C + 1) K + 2K + 82K.
W32_SWAHR_PARAMS = W32_PARAMS + 2 * (33 + 2 + 82) * 17  # 28,649,309
W48_SWAHR_PARAMS = W48_PARAMS + 2 * (49 + 2 + 82) * 17  # 63,831,661
LOSS_NAMES = {'loss', 'loss_heatmap_l0', 'loss_heatmap_l1', 'loss_pull', 'loss_push'}
SWAHR_LOSS_NAMES = LOSS_NAMES | {'loss_scale_l0', 'loss_scale_l1'}

# Every config under configs/ except _base_: a new config is tested by being added.
CONFIGS = sorted(
    str(path.relative_to(CONFIG_DIR)) for path in CONFIG_DIR.rglob('*.py')
    if '_base_' not in path.relative_to(CONFIG_DIR).parts)
# Parameter counts of the published architectures (configs not listed are not counted).
NUM_PARAMS = {
    'higherhrnet_w32_coco_512.py': W32_PARAMS,
    'higherhrnet_w32_coco_640.py': W32_PARAMS,
    'higherhrnet_w48_coco_640.py': W48_PARAMS,
    'higherhrnet_w32_crowdpose_512.py': W32_CROWDPOSE_PARAMS,
    'higherhrnet_w32_coco_512_swahr.py': W32_SWAHR_PARAMS,
    'higherhrnet_w48_coco_640_swahr.py': W48_SWAHR_PARAMS,
}
# The test data each dataset type trains on, and its keypoint count.
DATASETS = {'CocoDataset': ('coco', 17), 'CrowdPoseDataset': ('crowdpose', 14)}

# "Our components from another mmpose config": mmpose's own associative-embedding config,
# with mmpose's BottomupPoseEstimator and val pipeline (BottomupResize), a ResNet-50 backbone
# (layer1: 256 channels at 1/4) and this plugin's head, codec and loss.
MMPOSE_AE_CONFIG = ('mmpose::body_2d_keypoint/associative_embedding/coco/'
                    'ae_hrnet-w32_8xb24-300e_coco-512x512.py')
RESNET50_CONFIG = f"""
_base_ = '{MMPOSE_AE_CONFIG}'
custom_imports = dict(imports=['higherhrnet_plugin'], allow_failed_imports=False)
codec = dict(type='MultiLevelAssociativeEmbedding', input_size=({SIZE}, {SIZE}),
             heatmap_sizes=(({SIZE // 4}, {SIZE // 4}), ({SIZE // 2}, {SIZE // 2})), sigma=2)
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=50, out_indices=(0, )),
    head=dict(_delete_=True, type='AEHigherResolutionHead', in_channels=256,
              num_keypoints=17, loss=dict(type='HigherHRNetLoss', num_keypoints=17),
              decoder=codec))
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='BottomupRandomAffine', input_size=codec['input_size']),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupHeatmapMask'),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('data')
    return {
        'coco': coco_folder(tmp / 'coco'),
        'crowdpose': crowdpose_folder(tmp / 'crowdpose'),
        'toy': toy_folder(tmp / 'toy'),
    }


def _train_one_step(model, cfg: Config) -> dict:
    """One optimizer step on the first training batch; returns the logged losses."""
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    assert len(batch['data_samples']) == 2
    assert tuple(batch['inputs'][0].shape) == (3, SIZE, SIZE)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.head.final_layers[1].weight.detach().clone()
    model.train()
    losses = model.train_step(batch, optim_wrapper)
    swahr = type(model.head.loss_module).__name__ == 'SWAHRLoss'
    assert set(losses) == (SWAHR_LOSS_NAMES if swahr else LOSS_NAMES)
    assert all(math.isfinite(loss.item()) and loss.item() >= 0 for loss in losses.values())
    # The 1/2 heatmap layer is only reached through the deconvolution path: it moved.
    assert not torch.equal(before, model.head.final_layers[1].weight)
    return losses


def _test_all(model, cfg: Config, num_keypoints: int) -> dict:
    """Every test image through the test pipeline, ``test_step`` and the evaluator."""
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    model.eval()
    for batch in loader:
        outputs = model.test_step(batch)
        for output in outputs:
            keypoints = output.pred_instances.keypoints
            assert keypoints.shape[1:] == (num_keypoints, 2)
            assert output.pred_instances.keypoint_scores.shape == keypoints.shape[:2]
        evaluator.process(outputs, batch)
    return evaluator.evaluate(len(loader.dataset))


def _dataset_of(name: str) -> Tuple[str, int, str]:
    """Test data, keypoint count K and metric key of a shipped config, read from the config."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    dataset = dataset_cfg(cfg, 'train_dataloader')
    data, num_keypoints = DATASETS[dataset.type]
    if dataset.data_root.rstrip('/').endswith('toy'):
        data = 'toy'
    return data, num_keypoints, f"{cfg.val_evaluator.get('prefix', 'coco')}/AP"


def test_every_config_is_collected():
    assert {'higherhrnet_w32_coco_512.py', 'toy/higherhrnet_toy_synthetic.py'} <= set(CONFIGS)
    assert set(NUM_PARAMS) <= set(CONFIGS)
    assert not any(name.startswith('_base_') for name in CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_uses_the_reliability_parts(name):
    """Bad images skipped and counted, exact resume, atomic checkpoints (README "Reliability"),
    and what mmpose's inference APIs read from the config (the test pipeline, the dataset meta
    when a checkpoint has none) found through the ``ReliableDataset`` wrapper."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    assert cfg.randomness.seed is not None
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.train_dataloader.sampler.type == 'ResumableSampler'
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert dataset.type == 'ReliableDataset' and 'pipeline' not in dataset.dataset
        assert dataset.pipeline[0].type == 'CheckedLoadImage'
    _, num_keypoints, _ = _dataset_of(name)
    for mode in ('train', 'test'):
        meta = dataset_meta_from_config(cfg, mode)
        assert meta['num_keypoints'] == num_keypoints
        assert meta['dataset_name'] == DATASETS[dataset_cfg(cfg, f'{mode}_dataloader').type][0]


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_tests_one_step(name, data_roots):
    data, num_keypoints, metric_key = _dataset_of(name)
    cfg = load_config(name, data_roots[data], SIZE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if name in NUM_PARAMS:
        assert sum(p.numel() for p in model.parameters()) == NUM_PARAMS[name]
    assert model.head.num_keypoints == num_keypoints
    assert cfg.model.head.decoder.heatmap_sizes == ((SIZE // 4, SIZE // 4), (SIZE // 2, SIZE // 2))

    _train_one_step(model, cfg)
    metrics = _test_all(model, cfg, num_keypoints)
    assert 0 <= metrics[metric_key] <= 1


def test_predictions_are_in_image_coordinates(data_roots):
    """With no keypoint threshold every image yields people; their keypoints lie on the test
    canvas mapped back to the image (centre c, extent input_scale), not on the canvas."""
    cfg = load_config('higherhrnet_w32_coco_512.py', data_roots['coco'], SIZE)
    cfg.model.head.decoder.decode_keypoint_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    for batch in loader:
        (output, ) = model.test_step(batch)
        keypoints = output.pred_instances.keypoints
        assert 1 <= len(keypoints) <= cfg.model.head.decoder.max_num_people
        low = output.metainfo['input_center'] - output.metainfo['input_scale'] / 2
        high = output.metainfo['input_center'] + output.metainfo['input_scale'] / 2
        assert (keypoints >= low - 1).all() and (keypoints <= high + 1).all()
        # The 4 images are landscape, their canvas is 256 px high and the images 333 to 429:
        # y beyond 256 means the keypoints were mapped back from the canvas to the image.
        assert keypoints[..., 1].max() > SIZE


def test_components_in_an_mmpose_config(tmp_path, data_roots):
    """mmpose's AE config, ResNet-50 and mmpose's estimator, with our head, codec and loss."""
    config_file = tmp_path / 'resnet50_higherhrnet_head.py'
    config_file.write_text(RESNET50_CONFIG)
    cfg = Config.fromfile(str(config_file))
    cfg.merge_from_dict({**cpu_overrides(), **data_overrides(cfg, data_roots['coco'])})
    for loader in ('val_dataloader', 'test_dataloader'):
        # mmpose's BottomupResize, at our input size.
        cfg[loader].dataset.pipeline[1].input_size = (SIZE, SIZE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'BottomupPoseEstimator'
    assert type(model.backbone).__name__ == 'ResNet'

    _train_one_step(model, cfg)
    metrics = _test_all(model, cfg, num_keypoints=17)
    assert 0 <= metrics['coco/AP'] <= 1


def test_input_size_overrides_reach_every_size():
    """The 256 overrides change the codec, both pipelines' sizes and nothing else."""
    cfg = Config.fromfile(str(CONFIG_DIR / 'higherhrnet_w48_coco_640.py'))
    overrides = input_size_overrides(cfg, SIZE)
    assert overrides == {
        'model.head.decoder.input_size': (256, 256),
        'model.head.decoder.heatmap_sizes': ((64, 64), (128, 128)),
        'train_dataloader.dataset.pipeline.1.input_size': (256, 256),
        'train_dataloader.dataset.pipeline.3.encoder.input_size': (256, 256),
        'train_dataloader.dataset.pipeline.3.encoder.heatmap_sizes': ((64, 64), (128, 128)),
        'val_dataloader.dataset.pipeline.1.input_size': 256,
        'test_dataloader.dataset.pipeline.1.input_size': 256,
    }
