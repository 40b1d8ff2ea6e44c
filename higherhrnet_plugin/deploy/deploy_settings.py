"""The test-time settings an exported HigherHRNet needs, stored in the .onnx file itself.

:class:`DeploySettings` travels as one JSON entry of the ONNX ``metadata_props`` (key
:data:`METADATA_KEY`), so a deployment needs the .onnx file only: no config, no checkpoint.
"""
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, Mapping, Tuple

from ..structures.canvas_transforms import ROUNDINGS
from .deploy_error import DeployError

METADATA_KEY = 'higherhrnet_plugin.deploy'
# The graph's interface: one normalised image batch in, the aggregated maps out.
GRAPH_INPUT = 'inputs'
GRAPH_OUTPUTS = ('heatmaps', 'tags', 'peaks')
FORMAT_VERSION = 1
DECODE_MODES = ('fast', 'reference')
NORMALIZATIONS = ('official', 'mmpose')
AGGREGATIONS = ('official', 'mmpose0x')


@dataclass(frozen=True)
class DeploySettings:
    """Pre-processing, graph and decoding settings of one exported model.

    Args:
        input_size (int): ``HigherHRNetResize.input_size``: the canvas' short side.
        num_keypoints (int): K.
        flip_test (bool): Whether the graph runs the flip test.
        flip_indices (Tuple[int, ...]): Keypoint flip permutation (K entries).
        mean (Tuple[float, float, float]): Pixel mean (0-255) of the data preprocessor.
        std (Tuple[float, float, float]): Pixel standard deviation (0-255).
        swap_channels (bool): Whether the BGR image is made RGB before normalising
            (``bgr_to_rgb``).
        normalization (str): ``'official'``: ``(x / 255 - mean / 255) / (std / 255)``
            (``HigherHRNetDataPreprocessor``), ``'mmpose'``: ``(x - mean) / std``.
        rounding (str): ``HigherHRNetResize.rounding``. Defaults to ``'official'``.
        aggregation (str): The head's aggregation, in the graph. Defaults to ``'official'``.
        decode_mode (str): ``'fast'`` or ``'reference'`` grouping. Defaults to ``'fast'``.
        decode_options (Dict[str, Any]): Keyword arguments of the grouping function
            (``nms_kernel``, ``topk``, ``detection_threshold``, ``tag_threshold``,
            ``max_num_people``, ``adjust``, ``refine``, ``keypoint_order`` and, for
            ``'fast'``, ``refine_search``), as the codec passes them.
        keypoint_names (Tuple[str, ...]): Names of the K keypoints (informative).
        format_version (int): Layout version of this record. Defaults to ``1``.
    """
    input_size: int
    num_keypoints: int
    flip_test: bool
    flip_indices: Tuple[int, ...]
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    swap_channels: bool
    normalization: str = 'official'
    rounding: str = 'official'
    aggregation: str = 'official'
    decode_mode: str = 'fast'
    decode_options: Dict[str, Any] = field(default_factory=dict)
    keypoint_names: Tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name, value, allowed in (('decode_mode', self.decode_mode, DECODE_MODES),
                                     ('normalization', self.normalization, NORMALIZATIONS),
                                     ('rounding', self.rounding, ROUNDINGS),
                                     ('aggregation', self.aggregation, AGGREGATIONS)):
            if value not in allowed:
                raise DeployError(f'{name} must be one of {allowed}, got {value!r}')
        if sorted(self.flip_indices) != list(range(self.num_keypoints)):
            raise DeployError(f'flip_indices {list(self.flip_indices)} are not a permutation '
                              f'of the {self.num_keypoints} keypoints')
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DeployError(f'mean and std need 3 values, std > 0; got {self.mean}, {self.std}')

    def with_decode_mode(self, decode_mode: str) -> 'DeploySettings':
        """The same settings grouped by ``decode_mode`` (``refine_search``, a ``'fast'`` option,
        is kept for ``'fast'`` and dropped for ``'reference'``, which searches the full map)."""
        options = {k: v for k, v in self.decode_options.items() if k != 'refine_search'}
        if decode_mode == 'fast':
            options['refine_search'] = self.decode_options.get('refine_search', 'peaks')
        return replace(self, decode_mode=decode_mode, decode_options=options)

    def to_metadata(self) -> Dict[str, str]:
        """``{METADATA_KEY: JSON}``, for ``onnx.helper.set_model_props``."""
        return {METADATA_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], source: str) -> 'DeploySettings':
        """Read the settings back from an ONNX file's ``metadata_props``.

        Args:
            metadata (Mapping[str, str]): The file's metadata entries.
            source (str): The file, named in error messages.

        Returns:
            DeploySettings: The settings.

        Raises:
            DeployError: The file has no (readable) settings of this format.
        """
        if METADATA_KEY not in metadata:
            raise DeployError(f'{source} is not an exported HigherHRNet: its metadata has no '
                              f'{METADATA_KEY!r} entry (export one with tools/export_onnx.py)')
        try:
            record = json.loads(metadata[METADATA_KEY])
        except json.JSONDecodeError as error:
            raise DeployError(
                f'{source}: unreadable {METADATA_KEY!r} metadata ({error})') from error
        if not isinstance(record, dict) or record.get('format_version') != FORMAT_VERSION:
            version = record.get('format_version') if isinstance(record, dict) else None
            raise DeployError(f'{source}: deployment format version {version!r}, this code '
                              f'reads version {FORMAT_VERSION}; export the model again')
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(record) - {'keypoint_names'})
        if missing or set(record) - names:
            raise DeployError(f'{source}: {METADATA_KEY!r} metadata has missing fields '
                              f'{missing} or unknown ones {sorted(set(record) - names)}')
        tuples = ('flip_indices', 'mean', 'std', 'keypoint_names')
        return cls(**{k: tuple(v) if k in tuples else v for k, v in record.items()})
