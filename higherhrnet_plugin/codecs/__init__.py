from .multi_level_associative_embedding import MultiLevelAssociativeEmbedding

__all__ = ['MultiLevelAssociativeEmbedding']
