"""The two kinds of text in a `.pt2` graph that torch turns into Python code, and what they may hold.

`torch.export.load` hands every symbolic size (`expr_str`) to `sympy.sympify`, which evaluates it as
Python (with the builtins in scope), and `ExportedProgram.module()` pastes every `guards_code` string
into a function it `exec`s and calls on each forward. Either would run any code an archive carries.
`check_size_expression` accepts only what torch writes there, `sympy.srepr` of a size: constructors of
sympy numbers, `Symbol('name', assumption=True)`, and sympy and torch size functions over them (each
with a symbol among its arguments, so nothing is evaluated eagerly into a huge number).
`check_guard` accepts only comparisons and arithmetic of input sizes: `L['x'].size()[0] == 3` and alike.
Both raise ValueError with the reason.
"""

from __future__ import annotations

import ast
import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_TEXT = 4096
_MAX_INT = 1 << 63
#: sympy numbers: the only calls whose arguments may be plain numbers.
_NUMBERS = frozenset({"Integer", "Float", "Rational"})
_SYMBOLS = frozenset({"Symbol", "Dummy"})
#: sympy functions and relations of sizes that `srepr` writes, and torch's size functions (the names
#: torch's deserializer gives sympify).
_SIZE_FUNCTIONS = frozenset(
    "Add Mul Pow Max Min Mod Abs floor ceiling Piecewise ExprCondPair "
    "Equality Unequality StrictLessThan LessThan StrictGreaterThan GreaterThan And Or Not "
    "FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift PowByNatural "
    "FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt "
    "RoundDecimal ToFloat Identity".split()
)
_SYMPY_CONSTANTS = frozenset({"oo", "zoo", "nan", "true", "false"})
#: Guards: the tensor methods a guard may call on an input, and the functions it may apply.
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "numel", "dim"})
_GUARD_FUNCTIONS = frozenset({"math.floor", "math.ceil", "math.trunc", "math.isnan", "Max", "Min", "abs", "int"})
_GUARD_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.Div, ast.Pow)


def check_size_expression(text: str) -> None:
    """ValueError unless `text` is a sympy size expression as torch.export writes one."""
    _size_node(_parse(text).body)


def check_guard(text: str) -> None:
    """ValueError unless `text` compares input sizes the way torch.export's guards do."""
    _guard_node(_parse(text).body)


def _parse(text: str) -> ast.Expression:
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValueError("not a short expression")
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError("not one expression") from None


def _size_node(node: ast.AST) -> bool:
    """Check `node`; True when it holds a symbol."""
    if isinstance(node, ast.Constant) and _small_number(node.value):
        return False
    if isinstance(node, ast.Name) and node.id in _SYMPY_CONSTANTS:
        return False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _size_node(node.operand)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in _SYMBOLS:
            return _symbol(node)
        if name in _NUMBERS:
            if node.keywords or not all(isinstance(a, ast.Constant) and _small_number(a.value) for a in node.args):
                raise ValueError(f"{name} of something other than numbers")
            return False
        if name in _SIZE_FUNCTIONS:
            if node.keywords:
                raise ValueError(f"{name} with keyword arguments")
            if not any([_size_node(arg) for arg in node.args]):
                raise ValueError(f"{name} of numbers only (it would be evaluated while loading)")
            return True
        raise ValueError(f"calls {name}")
    raise ValueError(f"holds {type(node).__name__}")


def _symbol(node: ast.Call) -> bool:
    name = node.args[0] if len(node.args) == 1 else None
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and _IDENTIFIER.match(name.value)):
        raise ValueError("a Symbol without one plain name")
    if not all(isinstance(k.value, ast.Constant) and isinstance(k.value.value, bool) for k in node.keywords):
        raise ValueError("a Symbol with assumptions other than True/False")
    return True


def _guard_node(node: ast.AST) -> None:
    if isinstance(node, ast.Constant) and _small_number(node.value):
        return
    if isinstance(node, ast.Compare):
        for child in (node.left, *node.comparators):
            _guard_node(child)
    elif isinstance(node, ast.BoolOp):
        for child in node.values:
            _guard_node(child)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        _guard_node(node.operand)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _GUARD_OPERATORS):
        small_power = isinstance(node.right, ast.Constant) and node.right.value in range(65)
        if isinstance(node.op, ast.Pow) and not small_power:
            raise ValueError("a power other than 0-64")
        _guard_node(node.left)
        _guard_node(node.right)
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and _is_size_call(node.value):
        if not isinstance(node.slice.value, int):
            raise ValueError("a size index that is not a number")
    elif _is_size_call(node) or _is_input(node):
        return
    elif isinstance(node, ast.Call) and _dotted(node.func) in _GUARD_FUNCTIONS and not node.keywords:
        for arg in node.args:
            _guard_node(arg)
    else:
        raise ValueError(f"holds {type(node).__name__}")


def _is_size_call(node: ast.AST) -> bool:
    """`L[...].size()` and the other tensor methods a guard may call, without arguments."""
    return (
        isinstance(node, ast.Call)
        and not node.args
        and not node.keywords
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _GUARD_METHODS
        and _is_input(node.func.value)
    )


def _is_input(node: ast.AST) -> bool:
    """`L['name']`, `L['name'][0]`, `L['name']['key']`: an input, by plain names and indices."""
    if not isinstance(node, ast.Subscript):
        return False
    while isinstance(node, ast.Subscript):
        key = node.slice
        if not isinstance(key, ast.Constant):
            return False
        if not (isinstance(key.value, int) or (isinstance(key.value, str) and _IDENTIFIER.match(key.value))):
            return False
        node = node.value
    return isinstance(node, ast.Name) and node.id == "L"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return ""


def _small_number(value: object) -> bool:
    return isinstance(value, float) or (isinstance(value, int) and -_MAX_INT <= value <= _MAX_INT)
