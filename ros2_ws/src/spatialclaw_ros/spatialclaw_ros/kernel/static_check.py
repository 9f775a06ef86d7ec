"""AST check of a cell before it runs: the kernel's language-level layer, there to give the model a clear message.

It refuses imports outside an allow-list, private and dunder names, dynamic code and attribute
tricks, frame introspection, file I/O entry points, attributes that lead to dangerous modules
(``cv2.os``, ``dataclasses.sys``) and the places where allowed modules turn strings into code or
imports (string forward references in type expressions and what evaluates them, ``str.format``
attribute walks, matplotlib ``module://`` backends, PIL's ImageMath). Each refusal names the line
and says what to do instead. It is not the security boundary: the OS layer (launcher.py,
sandbox.py) keeps the host safe alone, and guards.py disarms at run time what a cell could hide
from this check.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass

ALLOWED_MODULES = frozenset({
    "math", "cmath", "statistics", "random", "itertools", "functools", "collections", "heapq", "bisect",
    "json", "re", "dataclasses", "typing", "enum", "fractions", "decimal", "copy", "string", "textwrap",
    "datetime", "time", "numpy", "scipy", "cv2", "PIL", "matplotlib.pyplot",
    # the namespace's own objects, importable as in the reference kernel (no files behind them)
    "tools", "tools.Reconstruct", "tools.SAM3", "tools.Geometry", "tools.Mask", "tools.Time", "tools.Graph",
    "tools.Draw", "vlm", "feedback",
    # pure computation or plotting that agent code commonly imports (sklearn is not installed)
    "matplotlib", "matplotlib.patches", "matplotlib.colors", "matplotlib.cm", "mpl_toolkits.mplot3d", "warnings",
    "pprint", "colorsys", "numbers",
})
#: Packages whose submodules may be imported too (unless a part is refused below).
ALLOWED_PACKAGES = ("numpy.", "scipy.", "PIL.")

PRELOADED = ("np, scipy, cv2, math, plt, matplotlib, collections, itertools, functools, ndimage, spatial, signal "
             "(scipy.signal), optimize, InputImages, Metadata, tools and its Reconstruct, SAM3, Geometry, Mask, "
             "Time, Graph, Draw (also bare), vlm, feedback, show and ReturnAnswer")

BANNED_NAMES = {
    "open": "cells cannot use files; work with InputImages, tools results and variables",
    "exec": "write the code directly in the cell",
    "eval": "write the expression directly in the cell",
    "compile": "write the code directly in the cell",
    "__import__": "import allowed modules with an import statement",
    "globals": "refer to variables by name",
    "locals": "refer to variables by name",
    "vars": "refer to attributes by name",
    "getattr": "use getattr(obj, 'name') with a constant public name, or plain attribute access",
    "setattr": "assign the attribute directly",
    "delattr": "use del obj.name",
    "breakpoint": "there is no debugger; print() what you want to inspect",
    "input": "there is no interactive input; use the variables you have",
    "help": "the tools are documented in your instructions",
    "memoryview": "use numpy arrays",
    "get_ipython": "this kernel is plain Python, not IPython",
    "exit": "end the question with ReturnAnswer(...) or just let the cell finish",
    "quit": "end the question with ReturnAnswer(...) or just let the cell finish",
}

FILE_IO_ATTRIBUTES = frozenset({
    # numpy
    "load", "save", "savez", "savez_compressed", "fromfile", "tofile", "loadtxt", "savetxt", "genfromtxt",
    "fromregex", "memmap", "open_memmap", "DataSource", "ctypeslib", "dump", "read_array", "f2py",
    # OpenCV
    "imread", "imwrite", "imreadmulti", "imwritemulti", "VideoCapture", "VideoWriter", "FileStorage",
    "readOpticalFlow", "writeOpticalFlow",
    # PIL and matplotlib
    "open", "savefig", "imsave", "ImageShow", "ImageGrab", "switch_backend", "use",
    # scipy.io and friends
    "io",
})

#: Attributes that are (or lead straight to) modules that give the host away.
MODULE_ATTRIBUTES = frozenset({
    "os", "sys", "posix", "nt", "builtins", "bltns", "importlib", "inspect", "subprocess", "socket", "ctypes",
    "shutil", "pathlib", "tempfile", "threading", "multiprocessing", "atexit", "copyreg", "codecs", "fileinput",
    "linecache", "logging", "platform", "sysconfig", "gzip", "zipfile", "urllib", "types", "traceback",
    "tokenize", "plistlib", "operator", "pickle", "marshal", "shelve", "runpy", "code", "codeop", "pty",
    "resource", "gc", "site", "modules", "distutils",
})

#: Attributes that hand out frames, code objects or other escape hatches.
INTROSPECTION_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await",
    "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next", "co_code",
    "co_consts", "func_globals", "attrgetter", "methodcaller", "get_type_hints", "ForwardRef", "update_wrapper",
    "wraps", "make_dataclass", "as_strided", "LowLevelCallable", "vformat", "get_field", "get_value",
    # what evaluates string annotations, and string evaluators of allowed packages (PIL.ImageMath, numpy.testing)
    "singledispatch", "singledispatchmethod", "get_annotations", "ImageMath", "eval", "unsafe_eval", "lambda_eval",
    "exec", "extbuild",
})

#: Names whose subscription turns a string into a forward reference that typing evaluates as code (the typing
#: module's generics and the builtin ones); ``Literal`` is left out: its strings are values.
TYPE_EXPRESSIONS = frozenset({
    "Optional", "Union", "List", "Dict", "Tuple", "Set", "FrozenSet", "Type", "Callable", "Sequence", "Mapping",
    "MutableMapping", "MutableSequence", "Iterable", "Iterator", "Generator", "Collection", "Container", "ClassVar",
    "Final", "Annotated", "Generic", "Protocol", "DefaultDict", "OrderedDict", "Counter", "Deque", "ChainMap",
    "Awaitable", "Coroutine", "AsyncIterator", "AsyncIterable", "TypeGuard", "Required", "NotRequired", "Unpack",
    "list", "dict", "tuple", "set", "frozenset", "type",
})
#: A string that makes matplotlib import a module, and the rcParams key that picks a backend (Agg stays).
MODULE_BACKEND_PREFIX, BACKEND_KEY = "module://", "backend"

#: Dunder methods a cell may define on its own classes (others reach interpreter internals).
SAFE_DUNDER_METHODS = frozenset(f"__{name}__" for name in (
    "init post_init repr str len iter next getitem setitem delitem contains eq ne lt le gt ge hash bool "
    "call enter exit add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod pow neg pos abs "
    "matmul rmatmul and or xor invert iadd isub imul itruediv int float index round format"
).split())

_DUNDER = re.compile(r"^__\w+__$")


@dataclass
class Violation:
    """One refused construct: the 1-based cell line and what to do instead."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _attribute_problem(attr: str) -> str | None:
    """Why accessing ``.attr`` is refused, or None if it is fine."""
    if attr.startswith("_"):
        return f"access to '.{attr}' is not allowed (names starting with '_' are private); use the public API"
    if attr in FILE_IO_ATTRIBUTES:
        return (f"'.{attr}' reads or writes files, which cells cannot do; keep data in variables (they persist "
                "between cells) and use show() to look at images")
    if attr in MODULE_ATTRIBUTES:
        return f"'.{attr}' leads to the '{attr}' module, which cells cannot use"
    if attr in INTROSPECTION_ATTRIBUTES:
        return f"'.{attr}' reaches interpreter internals or evaluates code, which cells cannot do"
    return None


def _module_problem(module: str) -> str | None:
    """Why importing ``module`` is refused, or None if it is allowed."""
    allowed = module in ALLOWED_MODULES or module.startswith(ALLOWED_PACKAGES)
    if allowed:
        for part in module.split(".")[1:]:
            if part.startswith("_") or part in FILE_IO_ATTRIBUTES or part in MODULE_ATTRIBUTES:
                allowed = False
    if allowed:
        return None
    modules = ", ".join(sorted(ALLOWED_MODULES))
    return f"import of '{module}' is not allowed here; the namespace already has {PRELOADED}, and you may import: {modules}"


def _type_expression(node: ast.expr) -> bool:
    """Whether ``node`` names a generic whose string arguments become evaluated forward references."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name in TYPE_EXPRESSIONS


def _format_fields_unsafe(template: str) -> bool:
    """True when a format string reads attributes or indexes in a field ('{0.x}', '{a[1]}')."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    except ValueError:
        return True
    return any("." in field or "[" in field for field in fields)


class _Checker(ast.NodeVisitor):
    """Collects violations while walking the whole tree."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def refuse(self, node: ast.AST, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", 0), message))

    def check_identifier(self, node: ast.AST, name: str | None) -> None:
        if name and _DUNDER.match(name):
            self.refuse(node, f"the name '{name}' is not allowed (dunder names reach interpreter internals)")

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            problem = _module_problem(alias.name)
            if problem:
                self.refuse(node, problem)
            self.check_identifier(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.refuse(node, "relative imports are not allowed; import allowed modules by their full name")
            return
        problem = _module_problem(node.module or "")
        if problem:
            self.refuse(node, problem)
            return
        for alias in node.names:
            if alias.name == "*":
                self.refuse(node, f"'from {node.module} import *' is not allowed; import the names you need")
                continue
            problem = _attribute_problem(alias.name) or (BANNED_NAMES.get(alias.name) and
                                                         f"'{alias.name}' is not available in this kernel")
            if problem:
                self.refuse(node, problem)
            self.check_identifier(node, alias.asname)

    # names and attributes
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BANNED_NAMES and node.id != "getattr":
            self.refuse(node, f"'{node.id}' is not available in this kernel; {BANNED_NAMES[node.id]}")
        elif node.id == "getattr":
            self.refuse(node, f"'getattr' may only be called as getattr(obj, 'name'); {BANNED_NAMES['getattr']}")
        else:
            self.check_identifier(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        problem = _attribute_problem(node.attr)
        if problem:
            self.refuse(node, problem)
        if node.attr in ("format", "format_map"):
            self.check_format(node)
        self.generic_visit(node)

    def check_format(self, node: ast.Attribute) -> None:
        """``.format`` / ``.format_map`` only on a string literal whose fields read no attribute or index (a template
        held in a variable, or ``str.format`` passed to map, would walk attributes of whatever it is given)."""
        receiver = node.value
        if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
            self.refuse(node, f".{node.attr}() is only allowed on a string literal; use an f-string")
        elif _format_fields_unsafe(receiver.value):
            self.refuse(node, "format fields with attribute or index access ('{0.x}', '{0[1]}') are not allowed; "
                              "use an f-string")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _type_expression(node.value):
            for sub in ast.walk(node.slice):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    self.refuse(sub, "a string inside a type expression is a forward reference that typing would "
                                     "evaluate as code; write the type itself")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr":
            self.check_getattr(node)
            for argument in [*node.args, *node.keywords]:
                self.visit(argument)
            return
        if isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 3:
            self.refuse(node, "type(name, bases, dict) is not allowed; define classes with a class statement")
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle":
                self.refuse(node, "allow_pickle is not allowed; cells exchange data as variables, not pickles")
            self.check_identifier(node, keyword.arg)
        self.generic_visit(node)

    def check_getattr(self, node: ast.Call) -> None:
        name = node.args[1] if len(node.args) >= 2 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or node.keywords:
            self.refuse(node, f"'getattr' may only be called as getattr(obj, 'name'); {BANNED_NAMES['getattr']}")
            return
        problem = _attribute_problem(name.value)
        if name.value in ("format", "format_map"):
            problem = f"getattr(obj, '{name.value}') is not allowed; use an f-string"
        if problem:
            self.refuse(node, problem)

    # definitions
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if _DUNDER.match(node.name) and node.name not in SAFE_DUNDER_METHODS:
            self.refuse(node, f"defining '{node.name}' is not allowed; plain methods and the usual operators are")
        annotations = [node.returns, *(arg.annotation for arg in ast.walk(node.args) if isinstance(arg, ast.arg))]
        for annotation in annotations:
            self.check_annotation(annotation)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.check_identifier(node, node.name)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.check_annotation(node.annotation)
        self.generic_visit(node)

    def check_annotation(self, annotation: ast.AST | None) -> None:
        if annotation is None:
            return
        for sub in ast.walk(annotation):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                self.refuse(sub, "string annotations are not allowed; annotate with the type itself or leave it out")

    def visit_arg(self, node: ast.arg) -> None:
        self.check_identifier(node, node.arg)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self.check_identifier(node, name)

    visit_Nonlocal = visit_Global

    def visit_MatchClass(self, node: ast.AST) -> None:
        for attr in getattr(node, "kwd_attrs", []):
            problem = _attribute_problem(attr)
            if problem:
                self.refuse(node, problem)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _DUNDER.match(node.value):
            self.refuse(node, f"the string '{node.value}' names interpreter internals and is not allowed")
        elif isinstance(node.value, str) and (node.value.startswith(MODULE_BACKEND_PREFIX)
                                              or node.value == BACKEND_KEY):
            self.refuse(node, "matplotlib's backend is fixed (Agg) in this kernel; draw figures and pass them to "
                              "show()")


def check_cell(source: str) -> list[Violation]:
    """All violations in ``source``, in line order; [] when the cell may run (or does not parse).

    A cell with a syntax error is passed on: running it reports the SyntaxError with its line.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    checker = _Checker()
    checker.visit(tree)
    unique = {(v.line, v.message): v for v in checker.violations}
    return sorted(unique.values(), key=lambda v: v.line)


def rejection_message(violations: list[Violation], limit: int = 5) -> str:
    """The text the agent sees for a refused cell (at most ``limit`` violations listed)."""
    lines = [f"The cell was not run: {len(violations)} construct(s) are not allowed in this kernel."]
    lines += [str(v) for v in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"... and {len(violations) - limit} more")
    return "\n".join(lines)
