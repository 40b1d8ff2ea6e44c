class DeployError(ValueError):
    """A file, image or setting that the ONNX deployment cannot use; the message says which
    and why (the tools print it and exit with status 1, writing nothing)."""
