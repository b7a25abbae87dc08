"""The MTCNN pipeline as small pure functions over arrays (no I/O, no sessions).

Faithful to the seed's TensorFlow graph: legacy ResizeBilinear pyramid, TensorFlow's
CropAndResize for R-Net/O-Net inputs, NonMaxSuppressionV2 ordering, strict ``>`` thresholds.
"""
