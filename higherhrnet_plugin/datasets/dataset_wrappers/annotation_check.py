"""Say what is wrong with a COCO-style keypoint annotation file."""
import json
from typing import Any, Dict, List, Optional

from mmengine import fileio

_IMAGE_KEYS = ('id', 'file_name', 'width', 'height')


def annotation_problem(path: str) -> Optional[str]:
    """The first problem of the COCO keypoint file ``path``, or ``None`` if none is found.

    Problems are what makes mmpose's ``CocoDataset`` crash with an error that does not name
    the file, or silently drop data: the file is missing, empty or not JSON; ``images`` or
    ``annotations`` is not a list; an image lacks ``id``, ``file_name``, ``width`` or
    ``height``; an annotation lacks ``id`` or ``image_id``, or names an image that is not
    listed; a ``bbox`` is not 4 numbers; ``keypoints`` are not 3 x K numbers with the same K
    in every annotation. An annotation without ``bbox`` or ``keypoints`` (another category)
    is allowed: mmpose skips it on purpose.
    """
    if not fileio.exists(path):
        return 'file not found'
    text = fileio.get_text(path)
    if not text.strip():
        return 'the file is empty'
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        return f'not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}'
    return _structure_problem(content)


def _structure_problem(content: Any) -> Optional[str]:
    if not isinstance(content, dict):
        return f'the top level is a {type(content).__name__}, not an object'
    for key in ('images', 'annotations'):
        if not isinstance(content.get(key), list):
            return f'"{key}" is missing or not a list'
    problem = (_records_problem(content['images'], 'image', _IMAGE_KEYS)
               or _records_problem(content['annotations'], 'annotation', ('id', 'image_id')))
    return problem or _annotations_problem(content['annotations'],
                                           {image['id'] for image in content['images']})


def _records_problem(records: List[Any], kind: str, keys: tuple) -> Optional[str]:
    for index, record in enumerate(records):
        missing = [k for k in keys if not isinstance(record, dict) or k not in record]
        if missing:
            return f'{kind} {index} has no {", ".join(missing)}: {str(record)[:120]}'
    return None


def _annotations_problem(annotations: List[Dict], image_ids: set) -> Optional[str]:
    num_values = None
    for index, ann in enumerate(annotations):
        where = f'annotation {index} (id {ann["id"]})'
        if ann['image_id'] not in image_ids:
            return f'{where}: image_id {ann["image_id"]} is not in "images"'
        if 'bbox' in ann and not _numbers(ann['bbox'], 4):
            return f'{where}: bbox must be 4 numbers, got {str(ann["bbox"])[:80]}'
        if 'keypoints' not in ann:
            continue
        keypoints = ann['keypoints']
        num_values = num_values or (len(keypoints) if isinstance(keypoints, list) else None)
        if not num_values or num_values % 3 or not _numbers(keypoints, num_values):
            return (f'{where}: keypoints must be 3 x K numbers (x, y, v), the same K in every '
                    f'annotation; got {len(keypoints)} values: {str(keypoints)[:80]}')
    return None


def _numbers(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))
