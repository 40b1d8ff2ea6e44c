# HigherHRNet-W32, CrowdPose (14 keypoints), input 512: the official recipe
# (experiments/crowd_pose/higher_hrnet/w32_512_adam_lr1e-3.yaml), evaluated with the CrowdPose metric.
_base_ = ['./higherhrnet_w32_coco_512.py']

model = dict(head=dict(num_keypoints=14))

dataset_type = 'CrowdPoseDataset'
metainfo = dict(from_file='configs/_base_/datasets/crowdpose.py')
data_root = 'data/crowdpose/'
train_dataloader = dict(
    dataset=dict(
        metainfo=metainfo,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='annotations/mmpose_crowdpose_trainval.json',
            data_prefix=dict(img='images/'))))
val_dataloader = dict(
    dataset=dict(
        metainfo=metainfo,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='annotations/mmpose_crowdpose_test.json',
            data_prefix=dict(img='images/'))))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    nms_mode='none',
    score_mode='bbox',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))
