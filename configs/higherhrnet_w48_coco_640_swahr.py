# HigherHRNet-W48 + SWAHR, COCO, input 640: the SWAHR recipe (greatlog/SWAHR-HumanPose,
# experiments/coco/higher_hrnet/w48_640_adam_lr1e-3.yaml). SWAHR README: 70.8 AP on val2017
# with flip (HigherHRNet: 69.9), 73.2 multi-scale. Trained in fp32 with SyncBN (no fp16,
# unlike the official W48).
_base_ = ['./higherhrnet_w48_coco_640.py']

# runtime: Adam, 1.2e-4 per GPU x 8 GPUs, 10 images per GPU; linear warm-up from 0.1x over
# 3 epochs, then linear decay to 0 at epoch 300, updated every iteration (SWAHR's trainer).
optim_wrapper = dict(optimizer=dict(type='Adam', lr=9.6e-4))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=3, start_factor=0.1, end_factor=1.0, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='LinearLR', begin=3, end=300, start_factor=1.0, end_factor=0.0, by_epoch=True,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=80)
# SWAHR's MODEL.SYNC_BN (used by mmengine only when training is distributed).
sync_bn = 'torch'

model = dict(
    head=dict(
        type='SWAHRHead',
        loss=dict(type='SWAHRLoss', scale_loss_factor=1.0),
        # SWAHR's TEST.DETECTION_THRESHOLD for W48 is HigherHRNet's 0.1.
        decoder=dict(decode_keypoint_thr=0.1)))
