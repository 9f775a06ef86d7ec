"""Sandbox-escape attempts the kernel must stop, as data: what each tries and the code it runs.

STATIC_ESCAPES must each be refused by the static check. OS_ESCAPES run with the static check
turned off, so only the OS layer (Landlock, seccomp, rlimits) stands in the way; their code raises
when an attempt fails, and the tests check the side effects (files, sockets, the parent) as well.
Placeholders filled in by the tests: {outside} (a path outside the scratch dir), {port} (a
listener on 127.0.0.1), {parent_pid} (the real pid of the process that owns the kernel, as an attacker would guess).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Escape:
    description: str
    code: str


@dataclass(frozen=True)
class OsEscape:
    description: str
    code: str
    expected_error: str  # a substring of the compact error of the refused cell


STATIC_ESCAPES = [
    Escape("read a host file with open()", "print(open('/etc/passwd').read())"),
    Escape("__import__ a module", "__import__('os').system('id')"),
    Escape("import os", "import os\nos.system('id')"),
    Escape("import subprocess", "import subprocess\nsubprocess.run(['id'])"),
    Escape("import socket", "import socket\nsocket.create_connection(('127.0.0.1', 80))"),
    Escape("import ctypes", "import ctypes\nctypes.CDLL(None).system(b'id')"),
    Escape("import importlib", "import importlib\nimportlib.import_module('os').system('id')"),
    Escape("import builtins", "import builtins\nbuiltins.open('/etc/passwd')"),
    Escape("import pickle", "import pickle\npickle.loads(b'cos\\nsystem\\n(S\"id\"\\ntR.')"),
    Escape("import shutil", "import shutil\nshutil.rmtree('/tmp')"),
    Escape("import pathlib", "import pathlib\npathlib.Path('/etc/passwd').read_text()"),
    Escape("import io", "import io\nio.open('/etc/passwd').read()"),
    Escape("from os import system", "from os import system\nsystem('id')"),
    Escape("relative import", "from . import worker"),
    Escape("random._os backdoor", "import random\nrandom._os.system('id')"),
    Escape("public module attribute of an allowed module", "import dataclasses\ndataclasses.sys.modules['os'].system('id')"),
    Escape("cv2 exposes os", "cv2.os.system('id')"),
    Escape("enum exposes builtins", "import enum\nenum.bltns.open('/etc/passwd')"),
    Escape("__subclasses__ walk", "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']"),
    Escape("__subclasses__ via object", "object.__subclasses__()"),
    Escape("get_ipython().system", "get_ipython().system('id')"),
    Escape("eval", "eval(\"__import__('os').system('id')\")"),
    Escape("exec", "exec('import os')"),
    Escape("compile", "compile('import os', 'x', 'exec')"),
    Escape("getattr with a computed name", "getattr(np, '_' + '_loader__')"),
    Escape("getattr with a dunder constant", "getattr(InputImages, '__class__')"),
    Escape("getattr to a module attribute", "getattr(cv2, 'os').system('id')"),
    Escape("getattr passed as a value", "import functools\nfunctools.reduce(getattr, ['os'], cv2)"),
    Escape("globals() to builtins", "globals()['__builtins__']['open']('/etc/passwd')"),
    Escape("vars() of a module", "vars(np)"),
    Escape("__builtins__ by name", "__builtins__['open']('/etc/passwd')"),
    Escape("function __globals__", "(lambda: 0).__globals__"),
    Escape("numpy load", "np.load('/etc/passwd', allow_pickle=True)"),
    Escape("numpy save", "np.save('/tmp/escape.npy', np.zeros(3))"),
    Escape("numpy fromfile", "np.fromfile('/etc/passwd', dtype=np.uint8)"),
    Escape("numpy loadtxt", "np.loadtxt('/etc/passwd')"),
    Escape("ndarray tofile", "np.zeros(3).tofile('/tmp/escape.bin')"),
    Escape("numpy ctypeslib", "import numpy.ctypeslib"),
    Escape("numpy memmap", "np.memmap('/etc/passwd')"),
    Escape("cv2.imread", "cv2.imread('/etc/passwd')"),
    Escape("cv2.imwrite", "cv2.imwrite('/tmp/escape.png', np.zeros((2, 2)))"),
    Escape("cv2.VideoCapture", "cv2.VideoCapture('/dev/video0')"),
    Escape("plt.savefig outside scratch", "plt.plot([1, 2])\nplt.savefig('/tmp/x')"),
    Escape("PIL Image.open", "from PIL import Image\nImage.open('/etc/passwd')"),
    Escape("scipy.io", "import scipy.io\nscipy.io.loadmat('/etc/passwd')"),
    Escape("format string attribute walk", "'{0.__class__}'.format(1)"),
    Escape("format string without a dunder literal", "'{0.real}'.format(1)"),
    Escape("format on a variable template", "template = 'x'\ntemplate.format(1)"),
    Escape("string.Formatter.vformat", "import string\nstring.Formatter().vformat('{0.x}', (1,), {})"),
    Escape("generator frame globals", "g = (i for i in [1])\ng.gi_frame.f_globals"),
    Escape("frame back-walk through a traceback",
           "try:\n    1 / 0\nexcept Exception as e:\n    t = e.__traceback__\n    t.tb_frame.f_back"),
    Escape("breakpoint()", "breakpoint()"),
    Escape("string annotation evaluated by get_type_hints",
           "import typing\ndef f(x: \"__import__('os')\"):\n    pass\ntyping.get_type_hints(f)"),
    Escape("class with __array_interface__ (raw memory access)",
           "class Raw:\n    @property\n    def __array_interface__(self):\n        return {}\nnp.asarray(Raw())"),
    Escape("three-argument type() with a dunder key", "type('Raw', (), {'__array_interface__': {}})"),
    Escape("as_strided out-of-bounds view", "np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**6,))"),
    Escape("match class pattern reading a dunder",
           "match 1:\n    case object(__class__=cls):\n        print(cls)"),
    Escape("operator.attrgetter via typing", "import typing\ntyping.operator.attrgetter('__class__')"),
    Escape("exit()", "exit()"),
    Escape("matplotlib backend import", "plt.switch_backend('module://os')"),
    # routes where an allowed module turns a string into code or an import (issue: typing forward references)
    Escape("forward reference registered through singledispatch",
           "import typing, functools\nT = typing.Optional[\"__import__('os').system('id')\"]\n"
           "def h(x: T):\n    pass\nfunctools.singledispatch(lambda x: 0).register(h)"),
    Escape("forward reference in a builtin generic", "T = list[\"__import__('os')\"]"),
    Escape("forward reference through a name imported from typing",
           "from typing import Dict\nT = Dict[str, \"__import__('os')\"]"),
    Escape("singledispatch imported by name", "from functools import singledispatch"),
    Escape("singledispatchmethod", "import functools\nfunctools.singledispatchmethod"),
    Escape("str.format passed to map", "list(map(str.format, ['{0.real}'], [1]))"),
    Escape("a template's bound format held in a variable", "walk = '{0.real}'.format\nwalk(1)"),
    Escape("str.format on a variable template, not called directly", "template = '{0.real}'\nf = template.format"),
    Escape("getattr of format", "getattr('{0.real}', 'format')(1)"),
    Escape("matplotlib rcParams backend set to a module", "plt.rcParams['backend'] = 'module://os'\nplt.figure()"),
    Escape("matplotlib rcParams backend in a dict", "plt.rcParams.update({'backend': 'agg'})"),
    Escape("PIL ImageMath.eval", "from PIL import ImageMath\nImageMath.eval('exec(\"import os\")')"),
    Escape("numpy.testing.extbuild", "np.testing.extbuild.build_and_import_extension('m', [])"),
]


OS_ESCAPES = [
    OsEscape("read /etc/passwd", "print(open('/etc/passwd').read())", "PermissionError"),
    OsEscape("read the parent's environment",
             "print(open('/proc/{parent_pid}/environ').read())", "PermissionError"),
    OsEscape("list the home directory", "import os\nprint(os.listdir('/root'))", "PermissionError"),
    OsEscape("write outside the scratch dir", "open('{outside}', 'w').write('escaped')", "PermissionError"),
    OsEscape("fork", "import os\nos.fork()", "Operation not permitted"),
    OsEscape("os.system",
             "import os\nrc = os.system('touch {outside}')\nif rc != 0:\n    raise OSError('os.system failed: %d' % rc)",
             "os.system failed"),
    OsEscape("subprocess", "import subprocess\nsubprocess.run(['/usr/bin/touch', '{outside}'])",
             "Operation not permitted"),
    OsEscape("posix_spawn", "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '{outside}'], {{}})",
             "Operation not permitted"),
    OsEscape("connect to a local listener", "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
             "Operation not permitted"),
    OsEscape("kill the parent", "import os\nos.kill({parent_pid}, 9)", "Operation not permitted"),
    OsEscape("ptrace-like read of the parent's memory via /proc",
             "open('/proc/{parent_pid}/mem', 'rb').read(1)", "PermissionError"),
]
