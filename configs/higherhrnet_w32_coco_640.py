# HigherHRNet-W32, COCO, input 640: the official recipe (experiments/coco/higher_hrnet/
# w32_640_adam_lr1e-3.yaml). Official README: 68.5 AP on val2017 with flip, 70.6 multi-scale.
# The official run trained (and tested) with fp16 convolutions: add --amp on a GPU for the same.
_base_ = ['./higherhrnet_w32_coco_512.py']

# codec: targets at 1/4 and 1/2 of the input (160 and 320); everything that names the input
# size follows it.
codec = dict(_base_.codec, input_size=(640, 640), heatmap_sizes=((160, 160), (320, 320)))
model = dict(head=dict(decoder=codec))

train_pipeline = [
    dict(type='CheckedLoadImage'),
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
    _base_.val_pipeline[-1],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
