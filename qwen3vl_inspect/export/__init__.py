"""ONNX export of the vision encoder, running the exported file, and checking a file for missing outputs.

onnx, onnxruntime and onnxscript are an optional extra (`pip install 'qwen3vl_inspect[onnx]'`);
they are imported only when a function here runs, never by `import qwen3vl_inspect`.
"""
