"""rectax: rectifier activations and the initializers that go with them.

The functional API mirrors :mod:`jax.nn` (same names, argument names and defaults where jax.nn has
the function), plus NecroReLU and the :func:`surrogate` constructor. Initializers live in
:mod:`rectax.initializers`; Flax modules in :mod:`rectax.linen` and :mod:`rectax.nnx`.
"""

from ._core._few_bit import few_bit as few_bit
from ._core._gradients import RESIDUAL_NAME as RESIDUAL_NAME
from ._core._gradients import residual_target as residual_target
from ._functions import SELU_ALPHA as SELU_ALPHA
from ._functions import SELU_SCALE as SELU_SCALE
from ._functions import celu as celu
from ._functions import crelu as crelu
from ._functions import elu as elu
from ._functions import geglu as geglu
from ._functions import gelu as gelu
from ._functions import glu as glu
from ._functions import hard_sigmoid as hard_sigmoid
from ._functions import hard_silu as hard_silu
from ._functions import hard_swish as hard_swish
from ._functions import hard_tanh as hard_tanh
from ._functions import leaky_relu as leaky_relu
from ._functions import mish as mish
from ._functions import necro_relu as necro_relu
from ._functions import prelu as prelu
from ._functions import reglu as reglu
from ._functions import relu as relu
from ._functions import relu6 as relu6
from ._functions import rrelu as rrelu
from ._functions import selu as selu
from ._functions import silu as silu
from ._functions import softplus as softplus
from ._functions import sparse_plus as sparse_plus
from ._functions import squared_relu as squared_relu
from ._functions import squareplus as squareplus
from ._functions import surrogate as surrogate
from ._functions import swiglu as swiglu
from ._functions import swish as swish

try:  # written from the git tag when the package is built or installed (hatch-vcs)
    from ._version import __version__ as __version__
except ImportError:  # a source tree used without installing it
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("rectax")
    except PackageNotFoundError:
        __version__ = "0+unknown"

__all__ = [
    "RESIDUAL_NAME",
    "SELU_ALPHA",
    "SELU_SCALE",
    "celu",
    "crelu",
    "elu",
    "few_bit",
    "geglu",
    "gelu",
    "glu",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "mish",
    "necro_relu",
    "prelu",
    "reglu",
    "relu",
    "relu6",
    "residual_target",
    "rrelu",
    "selu",
    "silu",
    "softplus",
    "sparse_plus",
    "squared_relu",
    "squareplus",
    "surrogate",
    "swiglu",
    "swish",
]
