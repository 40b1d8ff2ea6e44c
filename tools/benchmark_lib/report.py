"""The benchmark's markdown report and the speed issue's goals, from its results dict."""
from typing import Dict, List, Sequence, Tuple

from .decoders import DECODE_STAGES
from .device_timing import DEVICE_HEADERS, device_table
from .inference_stages import INFERENCE_HEADERS, inference_table
from .many_groups import MANY_GROUPS_HEADERS, many_groups_table

DECODERS = ('fast', 'reference', 'mmpose')


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats with 1 decimal (2 below 10)."""

    def cell(value):
        if isinstance(value, float):
            return f'{value:.2f}' if abs(value) < 10 else f'{value:.1f}'
        return str(value)

    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def image_table(rows: List[dict]) -> str:
    headers = [
        'image', 'canvas', 'pre-process', 'network (orig+flip)', 'aggregation', 'NMS+top-k',
        'grouping', 'adjust', 'refine', 'back-proj', 'persons', 'decode fast', 'decode reference',
        'decode mmpose', 'post % of network'
    ]
    body = []
    for r in rows:
        fast = r['decoders']['fast']
        post = r['aggregation_ms'] + fast['total_ms'] + r['back_projection_ms']
        body.append([
            r['image'], 'x'.join(map(str, r['canvas'])), r['preprocess_ms'], r['network_ms'],
            r['aggregation_ms'], *(fast['stages_ms'][s] for s in DECODE_STAGES),
            r['back_projection_ms'], fast['persons'],
            *(r['decoders'][d]['total_ms'] for d in DECODERS), 100.0 * post / r['network_ms']
        ])
    return markdown_table(headers, body)


def synthetic_table(rows: List[dict]) -> str:
    headers = [
        'persons', 'maps', 'decoder', 'found', 'NMS+top-k', 'grouping', 'adjust', 'refine',
        'decode total', 'back-proj', 'post % of network'
    ]
    body = [[
        r['num_persons'], r['maps'], r['decoder'], r['persons'], *(r['stages_ms'][s]
                                                                   for s in DECODE_STAGES),
        r['total_ms'], r['back_projection_ms'], r['post_percent']
    ] for r in rows]
    return markdown_table(headers, body)


def ratio_rows(rows: List[dict]) -> List[dict]:
    """Per (persons, maps): decode ms of each decoder and the speed-ups of ``fast``."""
    by_case: Dict[Tuple[int, str], Dict[str, float]] = {}
    for r in rows:
        by_case.setdefault((r['num_persons'], r['maps']), {})[r['decoder']] = r['total_ms']
    return [
        dict(num_persons=n,
             maps=maps,
             **{f'{d}_ms': ms[d]
                for d in DECODERS},
             reference_over_fast=ms['reference'] / ms['fast'],
             mmpose_over_fast=ms['mmpose'] / ms['fast']) for (n, maps), ms in by_case.items()
    ]


def ratio_table(rows: List[dict]) -> str:
    headers = [
        'persons', 'maps', 'fast ms', 'reference ms', 'mmpose ms', 'reference / fast',
        'mmpose / fast'
    ]
    return markdown_table(headers, [[
        r['num_persons'], r['maps'], r['fast_ms'], r['reference_ms'], r['mmpose_ms'],
        r['reference_over_fast'], r['mmpose_over_fast']
    ] for r in rows])


def ap_table(rows: List[dict]) -> str:
    headers = ['dataset', 'maps', 'AP fast', 'AP reference', 'AP mmpose', '|fast - reference|']
    return markdown_table(headers, [[
        r['dataset'], r['maps'], *(f"{r['ap'][d]:.4f}" for d in DECODERS),
        f"{abs(r['ap']['fast'] - r['ap']['reference']):.4f}"
    ] for r in rows])


def throughput_table(rows: List[dict]) -> str:
    base = {r['set']: r['images_per_second'] for r in rows if r['batch_size'] == 1}
    headers = [
        'set', 'canvases', 'batch', 'images', 'batches', 'seconds', 'images/s', 'test_step s',
        'vs batch 1'
    ]
    return markdown_table(headers, [[
        r['set'], ', '.join(
            'x'.join(map(str, c))
            for c in r['canvases']), r['batch_size'], r['images'], r['batches'], r['seconds'],
        r['images_per_second'], r['test_step_seconds'], r['images_per_second'] / base[r['set']]
    ] for r in rows])


def deploy_table(rows: List[dict]) -> str:
    headers = [
        'flip', 'runtime', 'images', 'pre-process', 'network + aggregation', 'decode',
        'back-proj', 'end to end', 'images/s', 'vs torch'
    ]
    return markdown_table(headers, [[
        'yes' if r['flip'] else 'no', r['runtime'], r['images'], r['preprocess_ms'],
        r['graph_ms'], r['decode_ms'], r['back_projection_ms'], r['end_to_end_ms'],
        r['images_per_second'], f"{r['speedup']:.2f}x"
    ] for r in rows])


def targets(results: dict) -> Dict[str, dict]:
    """The speed issue's goals that ``results`` covers: ``met`` and the worst case's value."""
    goals = {}
    if 'synthetic' in results:
        post = max(r['post_percent'] for r in results['synthetic'] if r['decoder'] == 'fast')
        speedup = min(r['mmpose_over_fast'] for r in results['ratios'])
        goals['post-processing <= 10% of network (fast, synthetic, %)'] = dict(met=post <= 10,
                                                                               worst=post)
        goals['fast >= 10x mmpose batch_decode (x)'] = dict(met=speedup >= 10, worst=speedup)
    if 'round_trip_ap' in results:
        gap = max(abs(r['ap']['fast'] - r['ap']['reference']) for r in results['round_trip_ap'])
        goals['|AP fast - AP reference| <= 0.1'] = dict(met=gap <= 0.1, worst=gap)
    if 'throughput' in results:
        rows = results['throughput']
        batch_1 = {r['set']: r['images_per_second'] for r in rows if r['batch_size'] == 1}
        gain = min(r['images_per_second'] / batch_1[r['set']] for r in rows if r['batch_size'] > 1)
        goals['batched images/s >= 1.5x batch 1 (x)'] = dict(met=gain >= 1.5, worst=gain)
    goals.update(decoder_targets(results))
    return goals


def decoder_targets(results: dict) -> Dict[str, dict]:
    """Goals of the decoder (fast at 30 persons, fast vs reference, many groups, inference)."""
    goals = {}
    if 'ratios' in results:
        most = max(r['num_persons'] for r in results['ratios'])
        worst = max(r['fast_ms'] for r in results['ratios'] if r['num_persons'] == most)
        goals[f'fast <= 5 ms at {most} persons (ms)'] = dict(met=worst <= 5, worst=worst)
        slowest = min(r['reference_over_fast'] for r in results['ratios'])
        goals['fast never slower than reference (x)'] = dict(met=slowest >= 1, worst=slowest)
    if 'many_groups' in results:
        worst = max(r['post_ms'] for r in results['many_groups'] if r['decoder'] != 'reference')
        goals['many groups: post-processing <= 1000 ms (fast, ms)'] = dict(met=worst <= 1000,
                                                                           worst=worst)
    if 'inference' in results:
        worst = max(r['outside_percent'] for r in results['inference'])
        goals['inference_bottomup outside the network <= 5% (%)'] = dict(met=worst <= 5,
                                                                         worst=worst)
    return goals


def report(results: dict) -> str:
    """The markdown report of the sections in ``results``."""
    env = results['environment']
    parts = [
        f"# HigherHRNet benchmark ({env['config']}, input {env['input_size']}, "
        f"{env['weights']}, CPU, {env['threads']} torch threads, load average "
        f"{env['load_before']} before, {env['load_after']} after)"
    ]
    if 'images' in results:
        parts += ['## Real images (ms)', image_table(results['images'])]
    if 'synthetic' in results:
        canvas = results['canvas']
        parts += [
            f"## Synthetic maps on canvas {'x'.join(map(str, canvas['canvas']))} (ms); network "
            f"{canvas['network_ms']:.0f} ms, aggregation {canvas['aggregation_ms']:.1f} ms",
            synthetic_table(results['synthetic']), '## Decoder ratios',
            ratio_table(results['ratios'])
        ]
    if 'round_trip_ap' in results:
        parts += ['## Round-trip AP', ap_table(results['round_trip_ap'])]
    if 'throughput' in results:
        parts += [
            '## Throughput (val dataloader + test_step)',
            throughput_table(results['throughput'])
        ]
    if 'deploy' in results:
        parts += ['## Eager torch vs onnxruntime (mean ms per image)',
                  deploy_table(results['deploy_summary'])]
    parts += extra_report(results)
    parts += [
        '## Targets',
        '\n'.join(f"- {name}: {'met' if t['met'] else 'NOT met'} (worst case {t['worst']:.3g})"
                  for name, t in results['targets'].items())
    ]
    return '\n\n'.join(parts)


def extra_report(results: dict) -> List[str]:
    """Report parts of the sections of ``EXTRA_SECTIONS`` in ``results``."""
    parts = []
    if 'many_groups' in results:
        image = results['many_groups'][0]
        parts += [
            f"## Many groups: {image['image']}, canvas {'x'.join(map(str, image['canvas']))}, "
            'W32-512 default init + BN statistics of the image (ms)',
            markdown_table(MANY_GROUPS_HEADERS, many_groups_table(results['many_groups']))
        ]
    if 'inference' in results:
        parts += [
            '## inference_bottomup, W32-512 default init, flip (ms)',
            markdown_table(INFERENCE_HEADERS, inference_table(results['inference']))
        ]
    if 'device' in results:
        parts += [
            '## On the device (per image)',
            markdown_table(DEVICE_HEADERS, device_table(results['device']))
        ]
    return parts
