"""The operators a served `.pt2` graph may call: what `torch.export` emits for inference, nothing else.

A torch.export graph is a list of calls; torch runs whatever operator a node names, including ones that
touch files, processes or storage (`aten.from_file(path, shared=True, size=N)` creates or grows any file
the process can write). `refused_operators` names every target of a graph that is not on the allow-list
below: ATen arithmetic, linear algebra, normalisation and activations, comparisons, reductions, gather and
index ops, top-k and sort, views and shape ops, tensor creation from sizes, dtype casts, shape asserts,
the Python operators torch.export uses on sizes, and the control-flow operators whose subgraphs are
checked too. It was built from what the reference UGT, the worked example's SASRec recommender and the
tests' models emit (torch 2.13), plus their obvious siblings. ATen operators are allowed by name, in every
overload. Anything else (file, process, storage, profiler, print and custom operators) is refused by name.
"""

from __future__ import annotations

from typing import Iterable

#: ATen operators (any overload) allowed in a served graph.
ALLOWED_ATEN: frozenset[str] = frozenset(
    # elementwise arithmetic and math
    "add sub rsub mul div true_divide floor_divide neg abs pow sqrt rsqrt exp exp2 expm1 log log2 log10 log1p "
    "sigmoid tanh sin cos tan asin acos atan atan2 sinh cosh erf erfc reciprocal sign floor ceil round trunc frac "
    "clamp clamp_min clamp_max clip minimum maximum fmod remainder hypot square lerp "
    # linear algebra
    "mm bmm matmul linear addmm addmv baddbmm einsum dot mv outer "
    # normalisation, activations, attention, embeddings
    "softmax _softmax log_softmax _log_softmax _safe_softmax layer_norm native_layer_norm rms_norm group_norm "
    "native_group_norm batch_norm _native_batch_norm_legit_no_training gelu relu relu6 silu leaky_relu elu selu "
    "hardtanh hardswish hardsigmoid mish softplus glu dropout scaled_dot_product_attention "
    "_scaled_dot_product_flash_attention_for_cpu embedding one_hot conv1d conv2d convolution pad constant_pad_nd "
    # comparisons and logic
    "eq ne lt le gt ge logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_xor "
    "bitwise_not __and__ __or__ __xor__ __invert__ isnan isinf isfinite isneginf isposinf nan_to_num where "
    "masked_fill "
    # reductions
    "sum mean max min amax amin argmax argmin prod cumsum cumprod logsumexp var std norm linalg_vector_norm "
    "any all count_nonzero "
    # gather, index, top-k, sort
    "gather scatter scatter_add scatter_reduce index index_select index_put take_along_dim select slice narrow "
    "topk sort argsort masked_select nonzero searchsorted bucketize "
    # views and shape
    "view reshape _unsafe_view expand expand_as permute transpose t squeeze unsqueeze flatten unflatten cat "
    "concat concatenate stack split split_with_sizes chunk unbind repeat repeat_interleave tile flip roll "
    "contiguous clone alias detach view_as movedim tril triu lift_fresh_copy "
    # creation from sizes, dtype casts
    "arange zeros ones full zeros_like ones_like full_like linspace scalar_tensor new_zeros new_ones new_full "
    "to _to_copy type_as "
    # sizes and shape asserts
    "sym_size sym_numel sym_stride sym_storage_offset _assert_tensor_metadata _assert_scalar _assert_async "
    "sym_constrain_range sym_constrain_range_for_size _functional_sym_constrain_range item _local_scalar_dense".split()
)
#: Other call targets allowed, as the archive spells them (less the `torch.ops.` prefix): the Python
#: operators torch.export applies to sizes and tuple outputs, and control flow (its subgraphs are checked).
ALLOWED_OTHER: frozenset[str] = frozenset(
    [f"_operator.{name}" for name in "getitem add sub mul floordiv truediv mod pow neg eq ne lt le gt ge".split()]
    + ["_operator.and_", "_operator.or_", "_operator.not_"]
    + [f"torch.sym_{name}" for name in "max min not float int ite sum".split()]
    + ["math.ceil", "math.floor", "math.trunc"]
    + [f"higher_order.{name}" for name in "cond while_loop map_impl scan".split()]
    + ["higher_order.wrap_with_set_grad_enabled", "higher_order.wrap_with_autocast"]
)


def is_allowed(name: str) -> bool:
    """True when the call target `name` ("aten.add.Tensor", "_operator.getitem", ...) may run."""
    namespace, _, rest = name.partition(".")
    if namespace == "aten":
        return rest.partition(".")[0] in ALLOWED_ATEN
    return name in ALLOWED_OTHER


def archive_target_name(target: str) -> str:
    """The name of a target as a .pt2's graph JSON spells it ("torch.ops.aten.add.Tensor" -> "aten.add.Tensor")."""
    return target[len("torch.ops.") :] if target.startswith("torch.ops.") else target


def runtime_target_name(target: object) -> str:
    """The name of a loaded graph's call target, spelt as `archive_target_name` spells it."""
    import torch

    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target.name()}"
    if isinstance(target, str):
        return archive_target_name(target)
    return f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__name__', repr(target))}"


def refused_operators(names: Iterable[str]) -> list[str]:
    """The names in `names` that are not allowed, sorted, each once."""
    return sorted({name for name in names if not is_allowed(name)})
