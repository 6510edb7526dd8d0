"""Teaching helpers for the notebooks in docs/tutorials: a picture of each idea in one line,
and the checks of the exercises the learner writes.

::

    from numcnn import teach
    teach.sliding_window(x, kernel, stride=2, padding=1)     # shows in a notebook
    teach.check_im2col(im2col)                               # correct / not written yet / ExerciseError

Figures (each returns a ``Picture``: a notebook shows it, ``.save(path)`` writes the PNG; they
need matplotlib, the ``train`` extra):

* convolution: ``why_convolution``, ``sliding_window``, ``receptive_field``,
  ``kernel_responses``, ``channel_sum``, ``conv_blocks``, ``network``;
* pooling: ``pooling``, ``corner_windows``, ``shift_tolerance``;
* im2col: ``im2col_matrix``, ``im2col_taps``, ``gemm``, ``count_map``, ``full_convolution``;
* a trained network: ``filters_and_maps``.

Checks (``check_*``) follow the notebooks' exercises; ``TextbookLayer`` and
``textbook_params`` connect the textbook's layer contract (``W``, ``dW``) with numcnn's
(``params``, ``grads``). ``use_words`` swaps every printed and drawn word for a translation.
"""

from ..errors import ExerciseError
from .canvas import Picture
from .checks import Verdict, forbidding
from .conv_figures import (channel_sum, conv_blocks, kernel_responses, network, receptive_field,
                           sliding_window, why_convolution)
from .exercises_conv import (check_commute, check_conv_multi, check_conv_params, check_corners, check_edge_kernel,
                             check_gray, check_max_pool_grad, check_out_size, check_padding)
from .exercises_layers import (check_channel_scale, check_col2im, check_col_mib, check_convolution, check_im2col,
                               check_pooling, check_separable, check_simple_convnet, check_swish)
from .im2col_figures import count_map, full_convolution, gemm, im2col_matrix, im2col_taps
from .net_figures import filters_and_maps
from .pool_figures import corner_windows, pooling, shift_tolerance
from .textbook import TextbookLayer, textbook_params
from .words import use_words

__all__ = [
    "Picture", "Verdict", "ExerciseError", "forbidding", "use_words", "TextbookLayer", "textbook_params",
    "why_convolution", "sliding_window", "receptive_field", "kernel_responses", "channel_sum", "conv_blocks",
    "network", "pooling", "corner_windows", "shift_tolerance", "im2col_matrix", "im2col_taps", "gemm",
    "count_map", "full_convolution", "filters_and_maps",
    "check_out_size", "check_padding", "check_edge_kernel", "check_conv_params", "check_gray", "check_conv_multi",
    "check_max_pool_grad", "check_corners", "check_commute", "check_im2col", "check_col2im", "check_col_mib",
    "check_convolution", "check_pooling", "check_simple_convnet", "check_swish", "check_channel_scale",
    "check_separable",
]
