"""Importing the plugin registers every component into mmpose's own registries."""
import importlib

import pytest
from mmpose.registry import DATA_SAMPLERS, KEYPOINT_CODECS, MODELS, TRANSFORMS

import higherhrnet_plugin

REGISTERED = [
    (MODELS, 'HRNetPreset', 'higherhrnet_plugin.models.backbones.hrnet_preset'),
    (MODELS, 'AEHigherResolutionHead',
     'higherhrnet_plugin.models.heads.ae_higher_resolution_head'),
    (MODELS, 'SWAHRHead', 'higherhrnet_plugin.models.heads.swahr_head'),
    (MODELS, 'HigherHRNetLoss', 'higherhrnet_plugin.models.losses.higher_hrnet_loss'),
    (MODELS, 'SWAHRLoss', 'higherhrnet_plugin.models.losses.swahr_loss'),
    (MODELS, 'HigherHRNet', 'higherhrnet_plugin.models.pose_estimators.higher_hrnet'),
    (KEYPOINT_CODECS, 'MultiLevelAssociativeEmbedding',
     'higherhrnet_plugin.codecs.multi_level_associative_embedding'),
    (TRANSFORMS, 'HigherHRNetResize',
     'higherhrnet_plugin.datasets.transforms.higher_hrnet_resize'),
    (TRANSFORMS, 'BottomupHeatmapMask',
     'higherhrnet_plugin.datasets.transforms.bottomup_heatmap_mask'),
    (DATA_SAMPLERS, 'CanvasSizeBatchSampler',
     'higherhrnet_plugin.datasets.samplers.canvas_size_batch_sampler'),
]


@pytest.mark.parametrize('registry,name,module', REGISTERED, ids=[r[1] for r in REGISTERED])
def test_component_is_registered_in_mmpose(registry, name, module):
    cls = registry.get(name)
    assert cls is not None, f'{name} missing from mmpose {registry.name}'
    assert cls.__module__ == module
    assert getattr(importlib.import_module(module), name) is cls


def test_mmpose_names_are_not_shadowed():
    """Our names are new: mmpose's own AE codec, head and HRNet stay as they were."""
    assert KEYPOINT_CODECS.get('AssociativeEmbedding').__module__.startswith('mmpose.')
    assert MODELS.get('AssociativeEmbeddingHead').__module__.startswith('mmpose.')
    assert MODELS.get('HRNet').__module__.startswith('mmpose.')
    assert TRANSFORMS.get('BottomupGetHeatmapMask').__module__.startswith('mmpose.')


def test_version():
    assert higherhrnet_plugin.__version__ == '0.1.0'
