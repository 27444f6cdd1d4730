"""The libraries the alert needs are vendored pure Python and import on Splunk's 3.9 and 3.13."""
import os
import subprocess

import pytest

from tests.pythons import SPLUNK_PYTHONS, splunk_python

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(REPO, "bin", "lib")
MODULES = ["requests", "urllib3", "idna", "certifi", "charset_normalizer", "jsonschema", "attr",
           "attrs", "pyrsistent", "splunklib", "deprecation", "packaging"]


def test_no_compiled_module_is_vendored():
    compiled = [os.path.join(d, n) for d, _, names in os.walk(LIB) for n in names
                if n.endswith((".so", ".pyd", ".dylib", ".dll"))]
    assert compiled == []


@pytest.mark.parametrize("version", SPLUNK_PYTHONS)
def test_vendored_libraries_import_without_warnings(version):
    python = splunk_python(version)
    code = ("import sys, warnings; warnings.simplefilter('error'); sys.path.insert(0, sys.argv[1]);\n"
            "import importlib\n"
            "for name in sys.argv[2:]:\n"
            "    module = importlib.import_module(name)\n"
            "    assert module.__file__.startswith(sys.argv[1]), (name, module.__file__)\n"
            "import jsonschema\n"
            "errors = list(jsonschema.Draft202012Validator({'type': 'integer'}).iter_errors('x'))\n"
            "assert len(errors) == 1, errors\n")
    subprocess.run([python, "-B", "-c", code, LIB] + MODULES, check=True, env={"PATH": os.environ["PATH"]})
