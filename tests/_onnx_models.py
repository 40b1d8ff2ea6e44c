"""Models, configs and eager references for the ONNX deployment tests.

Import it after putting ``tests/`` on ``sys.path``. Weights are random but seeded, with
PyTorch's default initialisation (as ``mmpose.apis.init_model`` leaves them): unlike the
official N(0, 0.001) init its heatmaps have peaks above the 0.1 threshold, so the real
images give persons to compare.
"""
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmpose.apis import inference_bottomup, init_model

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / '..' / 'shared' / 'data'
TOY_CONFIG = REPO / 'configs' / 'toy' / 'higherhrnet_toy_synthetic.py'
W32_CONFIG = REPO / 'configs' / 'higherhrnet_w32_coco_512.py'
COCO_IMAGE = SHARED_DATA / 'coco' / '000000000785.jpg'  # 640 x 425: landscape canvas
OCHUMAN_IMAGE = SHARED_DATA / 'ochuman' / '000817.jpg'  # 665 x 1000: portrait canvas


def real_images() -> List[Path]:
    """The real images of ../shared/data (coco, crowdpose, ochuman), by name."""
    return sorted(SHARED_DATA.glob('*/*.jpg'))


def random_checkpoint(config: Path, path: Path, seed: int = 0) -> Path:
    """``{'state_dict': ...}`` of the config's model, seeded PyTorch default init."""
    torch.manual_seed(seed)
    model = init_model(str(config), None, device='cpu')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def config_at_input_size(config: Path, input_size: int, path: Path) -> Path:
    """``config`` with its test-time ``HigherHRNetResize.input_size`` set, written to ``path``
    (small canvases keep W32 fast on CPU)."""
    cfg = Config.fromfile(str(config))
    for loader in ('val_dataloader', 'test_dataloader'):
        for step in cfg[loader]['dataset']['pipeline']:
            if step['type'] == 'HigherHRNetResize':
                step['input_size'] = input_size
    cfg.model.backbone.init_cfg = None
    cfg.dump(str(path))
    return path


def eager_model(config: Path, checkpoint: Path, decode_mode: str = 'fast'):
    """The eager model of ``inference_bottomup``, with its maps in ``pred_fields``."""
    model = init_model(str(config), str(checkpoint), device='cpu')
    model.test_cfg['output_heatmaps'] = True
    model.head.decoder.decode_mode = decode_mode
    return model


def eager_maps(sample) -> Tuple[np.ndarray, np.ndarray]:
    """(K, H, W) heatmaps and (K, H, W, L) tags of an ``inference_bottomup`` sample."""
    heatmaps = sample.pred_fields.heatmaps.numpy()
    tags = sample.pred_fields.tags.numpy()  # (L*K, H, W), L-major
    num_keypoints = heatmaps.shape[0]
    tags = tags.reshape(-1, num_keypoints, *tags.shape[1:]).transpose(1, 2, 3, 0)
    return heatmaps, tags


def eager_predict(model, image: np.ndarray):
    """``inference_bottomup`` of one BGR image: the data sample."""
    with torch.no_grad():
        return inference_bottomup(model, image)[0]
