# Runtime shared by every HigherHRNet config (mmpose 1.x defaults, self-contained: no mmpose:: base).
default_scope = 'mmpose'
custom_imports = dict(imports=['higherhrnet_plugin'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, but every checkpoint and `last_checkpoint` is written atomically
    # (temporary file, fsync, rename) and old ones are deleted only after: a kill never leaves a
    # truncated file that --resume would pick up (README "Reliability").
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=10, save_best='coco/AP', rule='greater',
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False),
)
# BN running statistics are buffers: keep them equal across ranks before validation.
# FiniteLossHook stops at a NaN/Inf loss before a checkpoint can save NaN weights;
# SkippedImagesHook warns about, counts and limits the images ReliableDataset skips;
# MidEpochResumeHook makes --resume from a mid-epoch checkpoint skip the batches already trained.
custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(type='FiniteLossHook'),
    dict(type='SkippedImagesHook', max_skipped=100),
    dict(type='MidEpochResumeHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # On a CPU-only machine use --cfg-options env_cfg.dist_cfg.backend=gloo (README).
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='PoseLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
backend_args = dict(backend='local')
