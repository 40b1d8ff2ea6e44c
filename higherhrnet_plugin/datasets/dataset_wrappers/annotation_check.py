"""Say what is wrong with a COCO-style keypoint annotation file, naming the file."""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

_IMAGE_KEYS = ('id', 'file_name', 'width', 'height')
_ANNOTATION_KEYS = ('id', 'image_id', 'bbox', 'keypoints')


def annotation_problem(path: str) -> Optional[str]:
    """The first problem of the COCO keypoint file ``path``, or ``None`` if none is found.

    Checked: the file exists, is not empty, is JSON, has ``images`` and ``annotations``
    lists; every image has ``id``, ``file_name``, ``width``, ``height``; every annotation has
    ``id``, ``image_id`` (of a listed image), a 4-number ``bbox`` and ``keypoints`` of
    3 x K numbers with the same K throughout.
    """
    file = Path(path)
    if not file.is_file():
        return 'file not found'
    text = file.read_text(encoding='utf-8', errors='replace')
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
    problem = _records_problem(content['images'], 'image', _IMAGE_KEYS)
    problem = problem or _records_problem(content['annotations'], 'annotation', _ANNOTATION_KEYS)
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
            return f'{where} refers to image_id {ann["image_id"]}, which is not in "images"'
        if not _numbers(ann['bbox'], 4):
            return f'{where}: bbox must be 4 numbers, got {str(ann["bbox"])[:80]}'
        keypoints = ann['keypoints']
        num_values = num_values or (len(keypoints) if isinstance(keypoints, list) else None)
        if not num_values or num_values % 3 or not _numbers(keypoints, num_values):
            return (f'{where}: keypoints must be 3 x K numbers (x, y, v), the same K in every '
                    f'annotation; got {str(keypoints)[:80]}')
    return None


def _numbers(values: Any, length: int) -> bool:
    return (isinstance(values, list) and len(values) == length
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))
