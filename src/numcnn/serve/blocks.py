"""The model as a tree the page can open: every layer, those inside a block too.

Each layer is named by its dotted path, the name its weights have in the state dict: "3" is
top-level layer 3; "3.0" is the first layer inside the block at 3; "3.shortcut.0" the first
layer of that block's shortcut. Sequential and Residual containers are opened; any other layer
is a leaf (its own ``forward`` is all we know of it).

``run`` sends one input through the tree a layer at a time and keeps every layer's output by
path. A Residual is opened as what it computes: the body's layers in turn, the shortcut (or the
input itself) beside them, and their sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend import to_numpy
from ..layers import Layer
from ..model import Residual, Sequential

__all__ = ["Node", "tree", "node_of", "flatten", "run", "forward", "input_of", "is_block"]


@dataclass(eq=False)
class Node:
    """One layer of the tree.

    path : its dotted name ("3", "3.0", "3.shortcut.0")
    input_path : the path of the layer whose output this one reads; None for the model's input
    branch : "body" or "shortcut" for the layers right inside a Residual, else None
    children : the opened layers inside a Sequential or Residual, empty for a leaf
    """

    path: str
    layer: Layer
    input_path: str | None
    branch: str | None = None
    children: list["Node"] = field(default_factory=list)

    @property
    def body(self) -> list["Node"]:
        """The children applied in turn (all of a Sequential's; a Residual's without the shortcut)."""
        return [child for child in self.children if child.branch != "shortcut"]

    @property
    def shortcut(self) -> "Node | None":
        return next((child for child in self.children if child.branch == "shortcut"), None)


def is_block(layer: Layer) -> bool:
    """Whether the tree opens layer: numcnn's own containers. A subclass may compute otherwise,
    so it stays closed."""
    return type(layer) in (Sequential, Residual)


def tree(layers: list[Layer], prefix: str = "", input_path: str | None = None,
         branch: str | None = None) -> list[Node]:
    """Nodes for layers applied in turn, named prefix + index, the first reading input_path."""
    nodes = []
    for i, layer in enumerate(layers):
        nodes.append(node_of(layer, f"{prefix}{i}", input_path, branch))
        input_path = nodes[-1].path
    return nodes


def node_of(layer: Layer, path: str, input_path: str | None, branch: str | None = None) -> Node:
    """The node of layer at path, a block with its inner layers as children."""
    node = Node(path, layer, input_path, branch)
    if is_block(layer):
        node.children = tree(list(layer.layers), f"{path}.", input_path,
                             "body" if isinstance(layer, Residual) else None)
        if isinstance(layer, Residual) and layer.shortcut is not None:
            node.children.append(node_of(layer.shortcut, f"{path}.shortcut", input_path, "shortcut"))
    return node


def flatten(nodes: list[Node]) -> list[Node]:
    """Every node of the tree, depth first, a block before the layers inside it."""
    found = []
    for node in nodes:
        found.append(node)
        found.extend(flatten(node.children))
    return found


def run(nodes: list[Node], x, outputs: dict[str, np.ndarray]):
    """Apply nodes in turn to x (1, ...), opening every block; each node's output, on the host,
    goes to outputs[path]. Returns the last output, where the model computes."""
    for node in nodes:
        x = forward(node, x, outputs)
    return x


def forward(node: Node, x, outputs: dict[str, np.ndarray]):
    """One node's output for input x, its inner layers' outputs recorded on the way."""
    if not node.children:
        out = node.layer.forward(x)
    else:
        out = run(node.body, x, outputs)
        if isinstance(node.layer, Residual):
            out = out + (forward(node.shortcut, x, outputs) if node.shortcut is not None else x)
    outputs[node.path] = to_numpy(out)
    return out


def input_of(node: Node, outputs: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """What node reads: the output of the layer before it, or the model's input image (1, C, H, W)."""
    return image if node.input_path is None else outputs[node.input_path]
