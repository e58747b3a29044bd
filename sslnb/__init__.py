"""sslnb: MAE vs SimCLR self-supervised pretraining, compared by linear probing frozen features."""
import warnings

# Some dependency imports tqdm.auto; in a kernel without ipywidgets (papermill) that warns into
# every notebook. sslnb's own bars are plain tqdm, which read well in papermill logs.
warnings.filterwarnings("ignore", message="IProgress not found")

from .params import resolve  # noqa: E402
from .train import pretrain  # noqa: E402
from .distributed import launch  # noqa: E402
from .methods import load_extra  # noqa: E402
from . import pipeline  # noqa: E402,F401  (the notebooks' stages: sslnb.pipeline.pretrain, .evaluate)

load_extra()  # methods in the user's own files (SSLNB_METHODS), in every process that imports sslnb

__version__ = "0.1.0"
__all__ = ["resolve", "pretrain", "launch"]
