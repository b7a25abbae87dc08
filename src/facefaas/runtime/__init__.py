"""ONNX Runtime: choosing execution providers and running the three networks."""
