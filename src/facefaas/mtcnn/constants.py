"""Named constants of MTCNN as the seed's graph uses them."""

from __future__ import annotations

import numpy as np

PIXEL_MEAN = np.float32(127.5)
PIXEL_SCALE = np.float32(128.0)  # divide by this

PNET_CELL = 12  # receptive field of one P-Net output cell, pixels at that scale
PNET_STRIDE = 2
PNET_MIN_SIDE = np.float32(12.0)  # the pyramid stops when min(h, w) * scale <= this

RNET_SIDE = 24
ONET_SIDE = 48

NMS_PNET_SCALE = np.float32(0.5)  # within one pyramid level
NMS_PNET_ALL = np.float32(0.7)  # across levels
NMS_RNET = np.float32(0.7)
NMS_ONET = np.float32(0.6)
NMS_MAX_OUTPUT = 1000  # every NonMaxSuppressionV2 of the graph keeps at most this many boxes
