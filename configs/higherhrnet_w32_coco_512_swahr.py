# HigherHRNet-W32 + SWAHR, COCO, input 512: the SWAHR recipe (greatlog/SWAHR-HumanPose,
# experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml). SWAHR README: 68.9 AP on val2017
# with flip (HigherHRNet: 67.1), 71.4 multi-scale. The network and test path are HigherHRNet's
# plus a scale branch per resolution (SWAHRHead); the loss is SWAHR's (SWAHRLoss).
_base_ = ['./higherhrnet_w32_coco_512.py']

# runtime: Adam, 2.5e-4 per GPU x 8 GPUs, 20 images per GPU; linear warm-up from 0.1x over
# 3 epochs, then linear decay to 0 at epoch 300, updated every iteration (SWAHR's trainer).
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=3, start_factor=0.1, end_factor=1.0, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='LinearLR', begin=3, end=300, start_factor=1.0, end_factor=0.0, by_epoch=True,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=160)

model = dict(
    head=dict(
        type='SWAHRHead',
        # The factors of the base config carry over; SWAHR adds the scale regulariser unweighted.
        loss=dict(type='SWAHRLoss', scale_loss_factor=1.0),
        # SWAHR's TEST.DETECTION_THRESHOLD for W32 (HigherHRNet: 0.1).
        decoder=dict(decode_keypoint_thr=0.12)))

train_dataloader = dict(batch_size=20)
