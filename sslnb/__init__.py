"""sslnb: MAE vs SimCLR self-supervised pretraining, compared by linear probing frozen features."""
from .params import resolve
from .train import pretrain

__version__ = "0.1.0"
__all__ = ["resolve", "pretrain"]
