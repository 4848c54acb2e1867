"""mtl_teach: the helper package of the mtl-teach course.

Data, models, losses, training strategies and the training loop; live plots
and widgets for the notebooks. The mechanisms the course teaches are written
out in the notebooks; this package supplies the plumbing.
"""

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.data import two_task
from mtl_teach.losses import MultiTaskLoss
from mtl_teach.models import SharedTrunkNet
from mtl_teach.registry import STRATEGIES
from mtl_teach.train import History, train

__all__ = [
    "ConfigError",
    "History",
    "MultiTaskLoss",
    "STRATEGIES",
    "SharedTrunkNet",
    "TrainConfig",
    "train",
    "two_task",
]
__version__ = "0.1.0"
