"""Initializers for rectifier networks, in the style of :mod:`jax.nn.initializers`.

Every initializer here is a :class:`jax.nn.initializers.Initializer`,
``init(key, shape, dtype=None) -> jax.Array``, so it plugs into ``flax.linen.Dense``,
``flax.nnx.Linear``, ``Conv`` and friends as ``kernel_init``/``bias_init``. Names, positional
arguments and defaults are jax's (rectax's extras, such as ``negative_slope``, ``layout`` and
``distribution``, are keyword-only and come after them), and jax's initializers that rectax
does not change (``normal``, ``uniform``, ``truncated_normal``, ``delta_orthogonal``,
``zeros``, ``ones``, ``constant``, the ``Initializer`` protocol) are re-exported as they are.
Differences from :mod:`jax.nn.initializers` (see ``docs/initializers.md``): unbiased
bfloat16/float16 samples, build-time validation, named kernel layouts (``layout=``) for kernels
that are not HWIO convolutions, empty arrays for zero-size shapes, clear errors for integer
dtypes.

Example:
  >>> import jax
  >>> import rectax as rx
  >>> from rectax import initializers as init
  >>> w = init.for_activation(rx.relu)(jax.random.key(0), (256, 128))
  >>> w.shape
  (256, 128)

Importing this module does not import Flax: :func:`lsuv` (model-level) imports it when called.
"""

from jax.nn.initializers import Initializer as Initializer
from jax.nn.initializers import constant as constant
from jax.nn.initializers import delta_orthogonal as delta_orthogonal
from jax.nn.initializers import normal as normal
from jax.nn.initializers import ones as ones
from jax.nn.initializers import truncated_normal as truncated_normal
from jax.nn.initializers import uniform as uniform
from jax.nn.initializers import zeros as zeros

from ._gain import TorchDefault as TorchDefault
from ._gain import for_activation as for_activation
from ._gain import gain as gain
from ._gain import second_moment as second_moment
from ._gain import torch_default as torch_default
from ._lsuv import LSUVLayer as LSUVLayer
from ._lsuv import lsuv as lsuv
from ._rai import BETA_2_1 as BETA_2_1
from ._rai import AsymmetricDistribution as AsymmetricDistribution
from ._rai import RAIInitializers as RAIInitializers
from ._rai import rai as rai
from ._rai import rai_constant as rai_constant
from ._rai import rai_initializers as rai_initializers
from ._rai import rai_sigma as rai_sigma
from ._variance import LAYOUTS as LAYOUTS
from ._variance import VarianceScaling as VarianceScaling
from ._variance import compute_fans as compute_fans
from ._variance import fan_in_bias as fan_in_bias
from ._variance import glorot_normal as glorot_normal
from ._variance import glorot_uniform as glorot_uniform
from ._variance import he_normal as he_normal
from ._variance import he_uniform as he_uniform
from ._variance import kaiming_normal as kaiming_normal
from ._variance import kaiming_uniform as kaiming_uniform
from ._variance import lecun_normal as lecun_normal
from ._variance import lecun_uniform as lecun_uniform
from ._variance import orthogonal as orthogonal
from ._variance import variance_scaling as variance_scaling
from ._variance import xavier_normal as xavier_normal
from ._variance import xavier_uniform as xavier_uniform

__all__ = [
    "BETA_2_1",
    "LAYOUTS",
    "AsymmetricDistribution",
    "Initializer",
    "LSUVLayer",
    "RAIInitializers",
    "TorchDefault",
    "VarianceScaling",
    "compute_fans",
    "constant",
    "delta_orthogonal",
    "fan_in_bias",
    "for_activation",
    "gain",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "lsuv",
    "normal",
    "ones",
    "orthogonal",
    "rai",
    "rai_constant",
    "rai_initializers",
    "rai_sigma",
    "second_moment",
    "torch_default",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
