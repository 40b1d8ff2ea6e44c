# HigherHRNet-W32, COCO, input 512: the official recipe (experiments/coco/higher_hrnet/
# w32_512_adam_lr1e-3.yaml). Paper / official README: 67.1 AP on val2017 with flip, 69.9 multi-scale.
_base_ = ['./_base_/default_runtime.py']

# runtime: Adam lr 1e-3, x0.1 at epochs 200 and 260, 300 epochs, no warm-up (official).
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=300, milestones=[200, 260], gamma=0.1, by_epoch=True)
]
# base_batch_size = (8 GPUs) x (12 images per GPU): the official yaml's IMAGES_PER_GPU.
auto_scale_lr = dict(base_batch_size=96)
# A fixed seed, so that --resume is exact: the sampler and ReliableDataset take their seeds when
# the train loop is built, before mmengine restores the checkpoint's seed, so a run with a new
# random seed per start would shuffle and augment differently after a resume.
randomness = dict(seed=0)

# codec: targets at 1/4 and 1/2 of the input (128 and 256), sigma 2, tags at 1/4.
codec = dict(
    type='MultiLevelAssociativeEmbedding',
    input_size=(512, 512),
    heatmap_sizes=((128, 128), (256, 256)),
    sigma=2,
    tag_level=0,
    max_num_people=30,
    decode_mode='fast',
    decode_nms_kernel=5,
    decode_topk=30,
    decode_keypoint_thr=0.1,
    decode_tag_thr=1.0,
    decode_adjust=True,
    decode_refine=True)

model = dict(
    type='HigherHRNet',
    data_preprocessor=dict(
        # mmpose's PoseDataPreprocessor, normalising as the official code (torchvision order).
        type='HigherHRNetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # Test canvases are multiples of 64 already; batches of mixed sizes pad to the largest.
        pad_size_divisor=64),
    backbone=dict(
        type='HRNetPreset',
        arch='w32',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth')),
    head=dict(
        type='AEHigherResolutionHead',
        in_channels=32,
        num_keypoints=17,
        tag_per_keypoint=True,
        num_deconv_layers=1,
        deconv_out_channels=(32, ),
        deconv_kernel_sizes=(4, ),
        num_basic_blocks=4,
        cat_output=(True, ),
        # K and the AE level are stated once: K here, the tag level in the codec; the head
        # passes both to its loss.
        loss=dict(
            type='HigherHRNetLoss',
            heatmap_loss_factors=(1.0, 1.0),
            push_loss_factor=1e-3,
            pull_loss_factor=1e-3,
            ae_loss_type='exp'),
        decoder=codec),
    test_cfg=dict(
        flip_test=True,
        multiscale_test=False,
        aggregation='official',
        output_heatmaps=False))

# data
dataset_type = 'CocoDataset'
# The dataset's keypoint meta information, stated on the ReliableDataset wrappers (which check
# it) for mmpose's inference APIs: they read it there when a checkpoint carries none.
metainfo = dict(from_file='configs/_base_/datasets/coco.py')
data_mode = 'bottomup'
data_root = 'data/coco/'

# CheckedLoadImage: LoadImage that raises for a missing, unreadable or truncated image, which
# ReliableDataset skips and counts (README "Reliability").
train_pipeline = [
    dict(type='CheckedLoadImage'),
    # Official: crop side min(h, w) * U(0.75, 1.5), rotation U(-30, 30) degrees, shift of up to
    # 20% (official: of the crop side; here: of the image width/height, as mmpose 0.x).
    dict(
        type='BottomupRandomAffine',
        input_size=codec['input_size'],
        shift_factor=0.2,
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
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
    batch_size=12,
    num_workers=2,
    persistent_workers=True,
    # ReliableDataset skips bad images and seeds each sample's augmentation from (seed, epoch,
    # index); ResumableSampler gives it the epoch and resumes in the middle of an epoch. The
    # pipeline is the wrapper's: mmpose's inference APIs read `test_dataloader.dataset.pipeline`.
    sampler=dict(type='ResumableSampler', shuffle=True),
    dataset=dict(
        type='ReliableDataset',
        pipeline=train_pipeline,
        metainfo=metainfo,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            data_mode=data_mode,
            ann_file='annotations/person_keypoints_train2017.json',
            data_prefix=dict(img='train2017/'))))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
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
            ann_file='annotations/person_keypoints_val2017.json',
            data_prefix=dict(img='val2017/'),
            test_mode=True)))
test_dataloader = val_dataloader

# Bottom-up evaluation as the reference: no OKS-NMS, no rescoring, person score = decoder score.
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    nms_mode='none',
    score_mode='bbox')
test_evaluator = val_evaluator
