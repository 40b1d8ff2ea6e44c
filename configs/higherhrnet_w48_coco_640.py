# HigherHRNet-W48, COCO, input 640: the official recipe (experiments/coco/higher_hrnet/
# w48_640_adam_lr1e-3.yaml). Official README: 69.9 AP on val2017 with flip, 72.1 multi-scale.
# The official run trained (and tested) with fp16 convolutions: add --amp on a GPU for the same.
_base_ = ['./higherhrnet_w32_coco_640.py']

# base_batch_size = (8 GPUs) x (10 images per GPU): the official yaml's IMAGES_PER_GPU.
auto_scale_lr = dict(base_batch_size=80)

model = dict(
    backbone=dict(
        arch='w48',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth')),
    head=dict(in_channels=48, deconv_out_channels=(48, )))

train_dataloader = dict(batch_size=10)
