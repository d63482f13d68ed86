"""rectax: rectifier activations and the initializers that go with them.

The functional API mirrors :mod:`jax.nn` (same names, argument names and defaults where jax.nn has
the function), plus NecroReLU and the :func:`surrogate` constructor. Initializers live in
:mod:`rectax.initializers`; Flax modules in :mod:`rectax.linen` and :mod:`rectax.nnx`.
"""

from ._activations import SELU_ALPHA as SELU_ALPHA
from ._activations import SELU_SCALE as SELU_SCALE
from ._activations import celu as celu
from ._activations import elu as elu
from ._activations import gelu as gelu
from ._activations import hard_tanh as hard_tanh
from ._activations import leaky_relu as leaky_relu
from ._activations import necro_relu as necro_relu
from ._activations import prelu as prelu
from ._activations import relu as relu
from ._activations import relu6 as relu6
from ._activations import rrelu as rrelu
from ._activations import selu as selu
from ._activations import silu as silu
from ._activations import softplus as softplus
from ._activations import squared_relu as squared_relu
from ._activations import surrogate as surrogate
from ._activations import swish as swish
from ._few_bit import few_bit as few_bit
from ._gradients import RESIDUAL_NAME as RESIDUAL_NAME
from ._gradients import residual_target as residual_target

__version__ = "0.1.0"

__all__ = [
    "RESIDUAL_NAME",
    "SELU_ALPHA",
    "SELU_SCALE",
    "celu",
    "elu",
    "few_bit",
    "gelu",
    "hard_tanh",
    "leaky_relu",
    "necro_relu",
    "prelu",
    "relu",
    "relu6",
    "residual_target",
    "rrelu",
    "selu",
    "silu",
    "softplus",
    "squared_relu",
    "surrogate",
    "swish",
]
