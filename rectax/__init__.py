"""rectax: rectifier activations and the initializers that go with them.

The functional API mirrors :mod:`jax.nn` (same names, argument names and defaults where jax.nn has
the function), plus NecroReLU and the :func:`surrogate` constructor. Initializers live in
:mod:`rectax.initializers`; Flax modules in :mod:`rectax.linen` and :mod:`rectax.nnx`.
"""

from ._activations import SELU_ALPHA as SELU_ALPHA
from ._activations import SELU_SCALE as SELU_SCALE
from ._activations import celu as celu
from ._activations import crelu as crelu
from ._activations import elu as elu
from ._activations import geglu as geglu
from ._activations import gelu as gelu
from ._activations import glu as glu
from ._activations import hard_sigmoid as hard_sigmoid
from ._activations import hard_silu as hard_silu
from ._activations import hard_swish as hard_swish
from ._activations import hard_tanh as hard_tanh
from ._activations import leaky_relu as leaky_relu
from ._activations import mish as mish
from ._activations import necro_relu as necro_relu
from ._activations import prelu as prelu
from ._activations import reglu as reglu
from ._activations import relu as relu
from ._activations import relu6 as relu6
from ._activations import rrelu as rrelu
from ._activations import selu as selu
from ._activations import silu as silu
from ._activations import softplus as softplus
from ._activations import sparse_plus as sparse_plus
from ._activations import squared_relu as squared_relu
from ._activations import squareplus as squareplus
from ._activations import surrogate as surrogate
from ._activations import swiglu as swiglu
from ._activations import swish as swish
from ._few_bit import few_bit as few_bit
from ._gradients import RESIDUAL_NAME as RESIDUAL_NAME
from ._gradients import residual_target as residual_target

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
