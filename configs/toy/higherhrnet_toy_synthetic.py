# The embedded default (README command 1): a small HigherHRNet trained on the synthetic
# COCO-format dataset of tools/make_toy_dataset.py, sized to train and evaluate on 2 CPU cores
# in minutes. Same head, codec, loss and test path as the COCO configs; smaller HRNet and input.
_base_ = ['../_base_/default_runtime.py']

max_epochs = 30
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, eta_min=1e-5, by_epoch=True),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    # The runtime's AtomicCheckpointHook, at the end only.
    checkpoint=dict(interval=max_epochs, save_best=None, max_keep_ckpts=1))
# Deterministic on CPU for a given machine and thread count (tools/run_toy.sh fixes it at 2).
randomness = dict(seed=0, deterministic=True)

codec = dict(
    type='MultiLevelAssociativeEmbedding',
    input_size=(256, 256),
    heatmap_sizes=((64, 64), (128, 128)),
    sigma=2,
    decode_mode='fast')

# An HRNet with the HigherHRNet topology (4 stages, 1/4 output) but fewer modules and channels.
toy_hrnet = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                num_channels=(32, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(2, 2),
                num_channels=(16, 32)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(2, 2, 2),
                num_channels=(16, 32, 64)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(2, 2, 2, 2),
                num_channels=(16, 32, 64, 128), multiscale_output=False))

model = dict(
    type='HigherHRNet',
    data_preprocessor=dict(
        # mmpose's PoseDataPreprocessor, normalising as the official code (torchvision order).
        type='HigherHRNetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=64),
    backbone=dict(type='HRNet', in_channels=3, extra=toy_hrnet),
    head=dict(
        type='AEHigherResolutionHead',
        in_channels=16,
        num_keypoints=17,
        deconv_out_channels=(16, ),
        num_basic_blocks=2,
        # AE weights 10x the official 1e-3: in a 30-epoch run the tags must separate persons
        # quickly; the COCO configs keep the official factors.
        loss=dict(
            type='HigherHRNetLoss', push_loss_factor=1e-2, pull_loss_factor=1e-2),
        decoder=codec),
    test_cfg=dict(flip_test=True, multiscale_test=False))

dataset_type = 'CocoDataset'
# Stated on the ReliableDataset wrappers (checked) for mmpose's inference APIs.
metainfo = dict(from_file='configs/_base_/datasets/coco.py')
data_mode = 'bottomup'
data_root = 'data/toy/'

train_pipeline = [
    dict(type='CheckedLoadImage'),
    dict(
        type='BottomupRandomAffine',
        input_size=codec['input_size'],
        shift_factor=0.1,
        scale_factor=(0.8, 1.2),
        scale_type='short',
        rotate_factor=15,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupHeatmapMask'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='CheckedLoadImage'),
    dict(type='HigherHRNetResize', input_size=codec['input_size'][0]),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape', 'img_shape',
                   'input_size', 'input_center', 'input_scale', 'flip', 'flip_direction',
                   'flip_indices', 'raw_ann_info', 'skeleton_links', 'aug_scales', 'aug_imgs')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    # As the COCO configs: bad images skipped and counted, exact resume (README "Reliability").
    sampler=dict(type='ResumableSampler', shuffle=True),
    dataset=dict(
        type='ReliableDataset',
        pipeline=train_pipeline,
        metainfo=metainfo,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            data_mode=data_mode,
            ann_file='annotations/person_keypoints_train.json',
            data_prefix=dict(img='images/train/'))))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    # Batch size 1 as the official test. Batches hold only images of equal test canvas, so
    # that no padding changes the predictions: `--cfg-options val_dataloader.batch_size=4
    # test_dataloader.batch_size=4` gives the maps of batch size 1 up to float rounding.
    batch_sampler=dict(type='CanvasSizeBatchSampler'),
    dataset=dict(
        type='ReliableDataset',
        pipeline=val_pipeline,
        metainfo=metainfo,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            data_mode=data_mode,
            ann_file='annotations/person_keypoints_val.json',
            data_prefix=dict(img='images/val/'),
            test_mode=True)))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val.json',
    nms_mode='none',
    score_mode='bbox')
test_evaluator = val_evaluator
