"""The mechanism every activation is built on; nothing here imports the rest of rectax.

* :mod:`._gradients`: the one custom-derivative mechanism (a derivative rule, stated once, serves
  both AD modes and keeps lean residuals);
* :mod:`._packing`: the 1-bit masks and ``b``-bit codes packed into words;
* :mod:`._few_bit`, :mod:`._few_bit_tables`: few-bit derivatives and their generated tables;
* :mod:`._catalog`: what each activation records beside its definition;
* :mod:`._dtypes`: the float32-or-wider and float64 evaluation helpers;
* :mod:`._prng`: jax's threefry2x32 keys with the hash unrolled (no loop on CPU, same bits).
"""
