# The embedded default with SWAHR (tools/compare_swahr_toy.sh trains both): the toy HigherHRNet
# of higherhrnet_toy_synthetic.py, same data, schedule, epochs and test path, with SWAHR's scale
# branch (SWAHRHead) and scale- and weight-adaptive loss (SWAHRLoss).
_base_ = ['./higherhrnet_toy_synthetic.py']

model = dict(head=dict(type='SWAHRHead', loss=dict(type='SWAHRLoss')))
