# HigherHRNet-W48 + SWAHR, CrowdPose (14 keypoints), input 640: the SWAHR recipe
# (greatlog/SWAHR-HumanPose, experiments/crowd_pose/higher_hrnet/w48_640_adam_lr1e-3.yaml: the
# COCO W48 recipe on CrowdPose trainval), evaluated on CrowdPose test with the CrowdPose metric.
# SWAHR README: 71.6 AP with flip (HigherHRNet: 65.9), 73.8 multi-scale. A user training the
# released code reports 62.7 (greatlog/SWAHR-HumanPose#9).
_base_ = ['./higherhrnet_w48_coco_640_swahr.py']

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
