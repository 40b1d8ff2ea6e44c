"""Images/s of the config's val dataloader + ``model.test_step``."""
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import List, Sequence

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .model import quiet
from .paths import SHARED_DATA


def replicated_coco(dst: Path, file_names: Sequence[str], copies: int) -> Path:
    """COCO layout under ``dst``: each of ``file_names`` (of ../shared/data/coco) ``copies``
    times as its own image id (same file, same annotations) in person_keypoints_val2017.json."""
    src = SHARED_DATA / 'coco'
    content = json.loads((src / 'test_coco.json').read_text())
    images, annotations = [], []
    for copy_index in range(copies):
        for image in content['images']:
            if image['file_name'] not in file_names:
                continue
            new_id = len(images) + 1
            images.append({**image, 'id': new_id})
            annotations += [{
                **a, 'image_id': new_id,
                'id': 1000 * new_id + i
            } for i, a in enumerate(content['annotations']) if a['image_id'] == image['id']]
    (dst / 'annotations').mkdir(parents=True, exist_ok=True)
    (dst / 'val2017').mkdir(exist_ok=True)
    (dst / 'annotations' / 'person_keypoints_val2017.json').write_text(
        json.dumps({
            **content, 'images': images,
            'annotations': annotations
        }))
    for name in file_names:
        (dst / 'val2017' / name).symlink_to((src / name).resolve())
    return dst


def images_per_second(cfg: Config, model, data_root: Path, batch_size: int,
                      use_batch_sampler: bool) -> dict:
    """Run the val dataloader (no workers) + ``model.test_step`` over ``data_root``, timed,
    after one untimed warm-up batch."""
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    dataset = loader_cfg.dataset
    # The dataset that reads the files: inside ReliableDataset in the shipped configs.
    (dataset.dataset if dataset.type == 'ReliableDataset' else dataset).data_root = str(data_root)
    if not use_batch_sampler:
        loader_cfg.pop('batch_sampler', None)
    with quiet():
        loader = Runner.build_dataloader(loader_cfg)
    images, batches, step_seconds, shapes = 0, 0, 0.0, set()
    with torch.no_grad():
        model.test_step(next(iter(loader)))  # warm-up: first allocations at this batch shape
    start = time.perf_counter()
    with torch.no_grad():
        for data in loader:
            step_start = time.perf_counter()
            model.test_step(data)
            step_seconds += time.perf_counter() - step_start
            images += len(data['data_samples'])
            batches += 1
            shapes.update(tuple(d.metainfo['input_size']) for d in data['data_samples'])
    seconds = time.perf_counter() - start
    return dict(batch_size=batch_size,
                images=images,
                batches=batches,
                seconds=seconds,
                images_per_second=images / seconds,
                test_step_seconds=step_seconds,
                canvases=sorted(list(s) for s in shapes))


def time_throughput(cfg: Config, model, batch_sizes: Sequence[int], copies: int,
                    quick: bool) -> List[dict]:
    """Images/s at each batch size on replicated COCO images (see the module docstring).

    The config's ``val_dataloader.batch_sampler`` (canvas grouping) is used when it has one.
    """
    coco = sorted(p.name for p in (SHARED_DATA / 'coco').glob('*.jpg'))
    with_sampler = 'batch_sampler' in cfg.val_dataloader
    sets = [(f'1 image x {copies}', coco[:1], copies)]
    if with_sampler and not quick:
        sets.append((f'{len(coco)} images x {copies // len(coco)}', coco, copies // len(coco)))
    rows = []
    for label, names, n in sets:
        with tempfile.TemporaryDirectory() as tmp:
            root = replicated_coco(Path(tmp), names, n)
            for batch_size in batch_sizes:
                row = images_per_second(cfg, model, root, batch_size, with_sampler)
                rows.append(dict(set=label, batch_sampler=with_sampler, **row))
    return rows
