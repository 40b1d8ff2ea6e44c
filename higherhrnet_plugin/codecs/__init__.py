try:
    import torch  # noqa: F401
except ImportError:  # torch-free deployment: only .utils.grouping_* (numpy) is used
    __all__ = []
else:
    from .multi_level_associative_embedding import MultiLevelAssociativeEmbedding

    __all__ = ['MultiLevelAssociativeEmbedding']
