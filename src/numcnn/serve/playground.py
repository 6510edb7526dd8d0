"""The conv arithmetic playground: one map, and a kernel size, padding, stride and dilation the
user picks. The answer works the output-size formula out with their numbers,

    OH = floor((H + 2P - D*(K-1) - 1) / S) + 1

gives where every window starts on the padded input, and convolves the map with numcnn's own
kernel (``functional.conv2d``) and a K x K mean filter (every weight 1/K^2), so that each output is
the average of what its window covers.

Settings that cannot work are explained, not refused: an output below one pixel (the effective
kernel D*(K-1)+1 is larger than the padded input), a padding above D*(K-1) (the first window
would hold nothing but padding), values below their least or above LIMIT.
"""

from __future__ import annotations

import numpy as np

from ..functional import conv2d, output_size

__all__ = ["LIMIT", "axis_arithmetic", "problems", "playground"]

LIMIT = 32  # each setting at most: a padded input stays small whatever is typed


def axis_arithmetic(size: int, kernel: int, stride: int, padding: int, dilation: int) -> dict:
    """The formula's terms along one axis of length size.

    Returns {"size": H, "padded": H + 2P, "effective_kernel": D*(K-1) + 1, "span": H + 2P - D*(K-1) - 1,
    "out": floor(span / S) + 1, "unread": span mod S (rows at the end no window reaches)}.
    """
    effective = dilation * (kernel - 1) + 1
    span = size + 2 * padding - effective
    return {"size": size, "padded": size + 2 * padding, "effective_kernel": effective, "span": span,
            "out": output_size(size, kernel, stride, padding, padding, dilation),
            "unread": span % stride if span >= 0 else None}


def problems(kernel: int, stride: int, padding: int, dilation: int, height: int, width: int) -> list[str]:
    """Why these settings give no convolution, in words; empty when they are fine."""
    found = []
    for name, value, least in (("the kernel size K", kernel, 1), ("the stride S", stride, 1),
                               ("the dilation D", dilation, 1), ("the padding P", padding, 0)):
        if value < least:
            found.append(f"{name} must be at least {least}; it is {value}.")
        elif value > LIMIT:
            found.append(f"{name} goes up to {LIMIT} here; it is {value}.")
    if found:
        return found
    reach = dilation * (kernel - 1)
    if padding > reach:
        found.append(f"The padding P = {padding} is more than D·(K−1) = {reach}: the first window would cover "
                     f"nothing but padding and read no pixel of the input. For this kernel, P can be at most "
                     f"{reach}.")
    for axis, size in (("rows", height), ("columns", width)):
        terms = axis_arithmetic(size, kernel, stride, padding, dilation)
        if terms["out"] < 1:
            found.append(f"No window fits along the {axis}: the effective kernel D·(K−1)+1 = "
                         f"{terms['effective_kernel']} is larger than the padded input {size} + 2·{padding} = "
                         f"{terms['padded']}, so the output would have {terms['out']} {axis}.")
    return found


def notes(kernel: int, stride: int, padding: int, dilation: int, height: int) -> list[str]:
    """What is worth seeing in valid settings (along the rows; the columns are alike)."""
    terms = axis_arithmetic(height, kernel, stride, padding, dilation)
    found = []
    if dilation > 1:
        found.append(f"Dilation D = {dilation} spaces the K = {kernel} taps {dilation} apart: the effective kernel "
                     f"is D·(K−1)+1 = {terms['effective_kernel']}.")
    if terms["unread"]:
        found.append(f"H + 2P − D·(K−1) − 1 = {terms['span']} is not a multiple of S = {stride}: the floor drops "
                     f"the remainder, and the last {terms['unread']} row(s) of the padded input are read by no window.")
    if stride > terms["effective_kernel"]:
        found.append(f"The stride S = {stride} is larger than the effective kernel {terms['effective_kernel']}: "
                     f"{stride - terms['effective_kernel']} row(s) between windows are never read.")
    return found


def playground(plane: np.ndarray, kernel: int, stride: int, padding: int, dilation: int) -> dict:
    """The playground's answer for one map.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Floats, the map convolved.

    Returns
    -------
    dict
        "settings"; "rows" and "cols" (``axis_arithmetic`` of H and W); "valid"; "problems" (why
        not valid); "notes"; and when valid "output" (OH, OW) from ``functional.conv2d`` with a
        K x K kernel of 1/K^2, "weight" (1/K^2), "starts" (where each window's first tap lies on
        the padded input, per axis) and "taps" (each tap's offset from it, D apart).
    """
    height, width = plane.shape
    settings = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    found = problems(kernel, stride, padding, dilation, height, width)
    answer = {"settings": settings, "valid": not found, "problems": found, "notes": [], "output": None}
    if all(1 <= v <= LIMIT for v in (kernel, stride, dilation)) and 0 <= padding <= LIMIT:
        answer["rows"] = axis_arithmetic(height, kernel, stride, padding, dilation)
        answer["cols"] = axis_arithmetic(width, kernel, stride, padding, dilation)
    if found:
        return answer
    weight = np.full((1, 1, kernel, kernel), 1.0 / kernel**2, dtype=plane.dtype)
    out = conv2d(plane[None, None], weight, None, stride, padding, dilation)[0, 0]
    answer.update(notes=notes(kernel, stride, padding, dilation, height), output=out, weight=float(weight[0, 0, 0, 0]),
                  starts={"rows": (np.arange(out.shape[0]) * stride).tolist(),
                          "cols": (np.arange(out.shape[1]) * stride).tolist()},
                  taps=(np.arange(kernel) * dilation).tolist())
    return answer
