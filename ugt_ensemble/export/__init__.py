"""Export the UGT model (ONNX) and check what was exported."""
