"""`make test` collects tests/ in one pytest run, and the test folders are not packages: two test
files with the same name in different folders stop the whole run at collection ("import file
mismatch"). Running one folder at a time hides it."""

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_test_file_name_is_unique_across_the_test_folders():
    seen = collections.defaultdict(list)
    for folder, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.startswith("test_") and f.endswith(".py"):
                seen[f].append(os.path.relpath(os.path.join(folder, f), TESTS))
    assert {f: where for f, where in seen.items() if len(where) > 1} == {}
