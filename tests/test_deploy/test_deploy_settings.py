"""DeploySettings: the .onnx metadata record, read back exactly or refused with a reason."""
import json

import pytest

from higherhrnet_plugin.deploy import METADATA_KEY, DeployError, DeploySettings


def _settings(**overrides):
    values = dict(input_size=512, num_keypoints=3, flip_test=True, flip_indices=(0, 2, 1),
                  mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), swap_channels=True,
                  decode_options=dict(nms_kernel=5, topk=30, refine_search='peaks'),
                  keypoint_names=('nose', 'left', 'right'))
    return DeploySettings(**{**values, **overrides})


def test_metadata_round_trip():
    settings = _settings(rounding='mmpose0x', aggregation='mmpose0x')
    metadata = settings.to_metadata()
    assert list(metadata) == [METADATA_KEY]
    assert json.loads(metadata[METADATA_KEY])['flip_indices'] == [0, 2, 1]
    assert DeploySettings.from_metadata(metadata, 'm.onnx') == settings


@pytest.mark.parametrize('metadata, message', [
    ({}, 'm.onnx is not an exported HigherHRNet'),
    ({METADATA_KEY: '{not json'}, 'unreadable'),
    ({METADATA_KEY: '{"format_version": 99}'}, 'format version 99'),
    ({METADATA_KEY: '[1, 2]'}, 'format version None'),
])
def test_unreadable_metadata_is_refused(metadata, message):
    with pytest.raises(DeployError, match=message):
        DeploySettings.from_metadata(metadata, 'm.onnx')


def test_missing_and_unknown_fields_are_named():
    record = json.loads(_settings().to_metadata()[METADATA_KEY])
    del record['input_size']
    record['colour'] = 'blue'
    with pytest.raises(DeployError, match=r"missing fields \['input_size'\].*\['colour'\]"):
        DeploySettings.from_metadata({METADATA_KEY: json.dumps(record)}, 'm.onnx')


@pytest.mark.parametrize('overrides, message', [
    (dict(decode_mode='slow'), "decode_mode must be one of .* got 'slow'"),
    (dict(normalization='imagenet'), 'normalization must be'),
    (dict(flip_indices=(0, 1, 1)), 'not a permutation of the 3 keypoints'),
    (dict(std=(1.0, 0.0, 1.0)), 'std > 0'),
])
def test_invalid_values_are_refused(overrides, message):
    with pytest.raises(DeployError, match=message):
        _settings(**overrides)


def test_with_decode_mode_keeps_refine_search_for_fast_only():
    reference = _settings().with_decode_mode('reference')
    assert reference.decode_mode == 'reference'
    assert reference.decode_options == dict(nms_kernel=5, topk=30)
    fast = reference.with_decode_mode('fast')
    assert fast.decode_options == dict(nms_kernel=5, topk=30, refine_search='peaks')
